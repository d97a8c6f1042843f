// Building DOM nodes: the one helper every view uses.

/** A new `tag` element with an optional class list and text. */
export function element(tag, className = '', text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null) node.textContent = text;
  return node;
}
