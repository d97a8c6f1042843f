# syntax=docker/dockerfile:1
# MidStream gateway: a multi-stage build producing a slim image that runs as a non-root user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin midstream \
    && cp target/release/midstream /usr/local/bin/midstream

FROM debian:bookworm-slim AS runtime
# ca-certificates tracks Debian's security updates; pinning it would only freeze old roots.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 midstream \
    && useradd --system --uid 10001 --gid midstream --home-dir /app --shell /usr/sbin/nologin midstream \
    && mkdir -p /app/data \
    && chown midstream:midstream /app/data
WORKDIR /app
COPY --from=build /usr/local/bin/midstream /usr/local/bin/midstream
COPY web ./web
COPY config ./config
USER 10001:10001
ENV MIDSTREAM_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///app/data/midstream.db \
    MIDSTREAM_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["midstream", "probe"]
ENTRYPOINT ["midstream"]
CMD ["serve"]
