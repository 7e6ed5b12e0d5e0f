# The AI Router image: the `airouter` binary (CLI and sidecar) and the filter's .wasm, built from
# this repository with the toolchain rust-toolchain.toml pins, in a small non-root final image.
#   docker build -f examples/compose/airouter.Dockerfile -t airouter .
# The .wasm is at /usr/local/lib/airouter/airouter_filter.wasm, for an Envoy that loads it from a
# shared volume (compose.yaml) or to pack as an OCI image (examples/oci/pack_wasm.py).

FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY rust-toolchain.toml Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY filter filter
COPY sidecar sidecar
COPY proto proto
COPY tests/wasm-host tests/wasm-host
COPY tests/bench/floor tests/bench/floor
COPY fuzz fuzz
# rust-toolchain.toml names the wasm32-wasip1 target: rustup adds it on the first cargo call.
RUN cargo build --locked --release -p airouter-sidecar \
 && cargo build --locked --release --target wasm32-wasip1 -p airouter-filter

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 airouter \
 && useradd --system --uid 10001 --gid airouter --no-create-home --shell /usr/sbin/nologin airouter
COPY --from=build /src/target/release/airouter /usr/local/bin/airouter
COPY --from=build /src/target/wasm32-wasip1/release/airouter_filter.wasm /usr/local/lib/airouter/airouter_filter.wasm
# Writable by the non-root user, for named volumes mounted there (a new volume takes the
# directory's owner): the rendered Envoy configuration, the demo's session records
# (examples/airouter.toml writes them to ../.run/sessions, beside examples/ in /app), and the
# copy of examples/ compose.yaml's `render` makes with [tracing] added.
RUN mkdir -p /var/lib/airouter /app/.run /app/examples \
 && chown 10001:10001 /var/lib/airouter /app/.run /app/examples
USER 10001:10001
# The sidecar's HTTP port and gRPC port in examples/airouter.toml ([sidecar] port, grpc_port).
EXPOSE 8103 8106
ENTRYPOINT ["/usr/local/bin/airouter"]
CMD ["serve", "/etc/airouter/airouter.toml"]
