# converge as a container: build with the Rust toolchain, run on a small distroless image that
# has glibc and the CA certificates (the cloud APIs are HTTPS) and runs as a non-root user.
#   docker build -t converge .                 # the runtime image (no shell)
#   docker build --target ci -t converge:ci .  # for CI job containers (busybox sh)
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

# The image CI job containers run (`docker build --target ci -t converge:ci .`): the same binary on
# distroless's debug variant, whose busybox gives GitHub Actions the `sh` and `tail` a job
# container needs to start and run steps. Still non-root.
FROM gcr.io/distroless/cc-debian12:debug-nonroot AS ci
COPY --from=build /src/target/release/converge /usr/local/bin/converge
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/converge"]
CMD ["--help"]

# The default image: no shell at all.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/converge /usr/local/bin/converge
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/converge"]
CMD ["--help"]
