# converge as a container: a minimal Debian with OpenSSH's client (apps on hosts are reached over
# ssh), the CA certificates (the cloud APIs are HTTPS) and a non-root user with a passwd entry
# (ssh looks the user up), plus converge itself.
#   docker build -t converge .                          # builds converge with the Rust toolchain
#   docker build --target prebuilt -t converge CONTEXT  # CONTEXT holds a `converge` built elsewhere
#   docker run --rm -v "$PWD:/work" converge plan --env dev
# On a machine that can pull no image, scripts/debian-base.sh builds the base from Debian's
# packages: add `--build-arg BASE=converge-local/debian:bookworm-slim`. The stages are in this
# order so that a build without BuildKit stops at `prebuilt` before the Rust toolchain's stage.

ARG BASE=debian:bookworm-slim

FROM ${BASE} AS runtime
# Debian's stable packages, not pinned to one build: security updates must reach the image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/converge \
       --shell /usr/sbin/nologin converge
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/converge"]
CMD ["--help"]

# A binary built elsewhere (the image test builds one on the machine).
FROM runtime AS prebuilt
COPY converge /usr/local/bin/converge

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

# For CI job containers (`--target ci`): the runtime has the `sh` and `tail` a GitHub Actions job
# container needs; git is added so `plan --policy-ref origin/main` can read the base branch's
# policies.
FROM runtime AS ci
USER 0:0
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
USER 10001:10001
COPY --from=build /src/target/release/converge /usr/local/bin/converge

FROM runtime
COPY --from=build /src/target/release/converge /usr/local/bin/converge
