# converge as a container: build with the Rust toolchain, run on a small distroless image that
# has glibc and the CA certificates (the cloud APIs are HTTPS) and runs as a non-root user.
#   docker build -t converge .
#   docker run --rm -v "$PWD:/work" -w /work converge plan --env dev

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a change to converge's own code does not rebuild the SDKs.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/refresh.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin converge \
    && strip target/release/converge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/converge /usr/local/bin/converge
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/converge"]
CMD ["--help"]
