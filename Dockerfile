# syntax=docker/dockerfile:1
# ferry's container image: ferry, skopeo (ferry's default engine), crane (--engine crane) and
# the CA certificates they trust, on Debian bookworm, run as the unprivileged user 10001.
#
#   docker build -t ghcr.io/OWNER/ferry:latest .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" \
#     ghcr.io/OWNER/ferry:latest sync --dest harbor.example/third
#
# --user: a bind mount keeps its owner on the host, so the image's user 10001 cannot write
# into your directory (./mirror, --report, --failed-list); run as yourself instead.
#
# The build needs BuildKit (the default of Docker 23 and later, and of Podman/Buildah) for its
# cache mounts, which keep crates.io downloads and the compiled dependencies between builds.

# ferry itself, against the locked dependencies. Only what the build reads is copied, so an
# edit to the README or the tests reuses the cached layer.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -m 0755 target/release/ferry /usr/local/bin/ferry \
 && ferry manpage --dir /usr/local/share/man/man1 >/dev/null

# crane, which Debian does not package: a static binary (no cgo), so it needs nothing from the
# runtime image.
FROM golang:1.22-bookworm AS crane
ENV CGO_ENABLED=0
RUN go install -trimpath -ldflags="-s -w" \
      github.com/google/go-containerregistry/cmd/crane@v0.20.2

# The runtime: the same Debian release as the builder, so ferry finds the glibc it was linked
# against. skopeo brings containers-common (policy.json, registries.conf); recommends are left
# out and the apt lists removed to keep the image small.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      skopeo \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/ferry /usr/local/bin/ferry
# ferry(1) and a page per subcommand (ferry-sync(1), …), for `man` where the image has it, or
# to copy out with `docker cp`.
COPY --from=build /usr/local/share/man/man1 /usr/local/share/man/man1
COPY --from=crane /go/bin/crane /usr/local/bin/crane
# A numeric USER, so that Kubernetes' runAsNonRoot can verify it without a runAsUser. /work is
# the default working directory (ferry's ./source-images.list and ./mirror). The image's own
# /work belongs to 10001; a directory mounted over it keeps its owner on the host, so
# `docker run -v "$PWD:/work"` needs `--user "$(id -u):$(id -g)"` to write there. /tmp (ferry's
# private directory, skopeo's temporary files) is writable by any user.
RUN useradd --uid 10001 --user-group --home-dir /home/ferry --create-home \
      --shell /usr/sbin/nologin ferry \
 && install -d -o 10001 -g 10001 /work
ENV HOME=/home/ferry
USER 10001:10001
WORKDIR /work
LABEL org.opencontainers.image.title="ferry" \
      org.opencontainers.image.description="Mirror third-party container images into a private registry" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["ferry"]
CMD ["--help"]
