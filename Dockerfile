# ssec-proxy: a static binary on a minimal, non-root base.
#   docker build -t ssec-proxy .
#   docker run -v $PWD/ssec.yaml:/etc/ssec-proxy/config.yaml:ro -v $PWD/keys:/run/secrets:ro -p 8443:8443 ssec-proxy
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ssec-proxy ./cmd/ssec-proxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ssec-proxy /usr/local/bin/ssec-proxy
USER 65532:65532
ENV XDG_STATE_HOME=/var/lib/ssec-proxy
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/ssec-proxy"]
CMD ["serve", "--config", "/etc/ssec-proxy/config.yaml"]
