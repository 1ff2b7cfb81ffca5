# ssec-proxy: a static binary on a minimal, non-root base (no shell, no libc).
#   make image                       (docker or podman, whichever is installed)
#   docker build -t ssec-proxy .
#   podman build --format docker -t ssec-proxy .   (docker format keeps HEALTHCHECK)
#   docker run --rm -p 127.0.0.1:8443:8443 \
#     -v $PWD/ssec.yaml:/etc/ssec-proxy/config.yaml:ro -v $PWD/keys:/run/secrets/ssec-proxy:ro \
#     -e SOS_ACCESS_KEY -e SOS_SECRET_KEY ssec-proxy
# The config must listen on 0.0.0.0:8443 to be reachable through -p; the
# admin listener (/metrics, /healthz, /readyz) stays on 127.0.0.1:9464 unless
# the config says otherwise, which is where HEALTHCHECK asks. See
# docs/RUNNING.md. cmd/ssec-proxy's tests build the binary with the flags
# below and check that it is static and that the flags used here exist;
# TestImage builds this file with podman and runs the image.
#
# Build arguments:
#   GO_IMAGE    the Go toolchain the binary is built with (golang:1.26-bookworm,
#               spelt out: podman resolves no short names by default)
#   BASE_IMAGE  the runtime base: static, with CA certificates and user 65532
#   BINARY      source (default): build the binary here from the context;
#               prebuilt: the context is a directory holding ssec-proxy, a
#               binary already built with the flags below (CGO_ENABLED=0,
#               -trimpath, -ldflags="-s -w"), and an empty state/ directory:
#               how TestImage builds the image without a registry.
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot
ARG BINARY

FROM ${GO_IMAGE} AS build-source
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/ssec-proxy ./cmd/ssec-proxy \
 && mkdir -p /out/state

FROM scratch AS build-prebuilt
COPY ssec-proxy /out/ssec-proxy
COPY state /out/state

# Only the stage BINARY names is built. The default is here, not on the
# ARG: podman (buildah) picks the stages to build before it applies ARG
# defaults, and would skip build-source.
FROM build-${BINARY:-source} AS build

FROM ${BASE_IMAGE}
COPY --from=build /out/ssec-proxy /usr/local/bin/ssec-proxy
# tls.mode auto keeps its CA and certificate here (state_dir defaults to
# $XDG_STATE_HOME/ssec-proxy); mount a volume to keep them across restarts.
COPY --from=build --chown=65532:65532 /out/state /var/lib/ssec-proxy
ENV XDG_STATE_HOME=/var/lib
USER 65532:65532
EXPOSE 8443 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/ssec-proxy", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ssec-proxy"]
CMD ["serve", "--config", "/etc/ssec-proxy/config.yaml"]
