# ssec-proxy: a static binary on a minimal, non-root base (no shell, no libc).
#   docker build -t ssec-proxy .
#   docker run --rm -p 127.0.0.1:8443:8443 \
#     -v $PWD/ssec.yaml:/etc/ssec-proxy/config.yaml:ro -v $PWD/keys:/run/secrets/ssec-proxy:ro \
#     -e SOS_ACCESS_KEY -e SOS_SECRET_KEY ssec-proxy
# The config must listen on 0.0.0.0:8443 to be reachable through -p; the
# admin listener (/metrics, /healthz, /readyz) stays on 127.0.0.1:9464 unless
# the config says otherwise, which is where HEALTHCHECK asks. See
# docs/RUNNING.md. cmd/ssec-proxy's tests build the binary with the flags
# below and check that it is static and that the flags used here exist.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/ssec-proxy ./cmd/ssec-proxy \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
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
