# syntax=docker/dockerfile:1
# pushgate's container image: a static binary on distroless, run as a numeric
# non-root user. Build with `make image`; the Helm chart in charts/pushgate runs it.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: the SQLite driver is pure Go, so the binary needs no libc.
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/pushgate ./cmd/pushgate \
 && /out/pushgate version \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="pushgate" \
      org.opencontainers.image.description="Multi-tenant push notification gateway for Mattermost and Rocket.Chat" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/pushgate/pushgate"
COPY --from=build /out/pushgate /usr/local/bin/pushgate
# The only writable place; the chart mounts a volume here (the root filesystem is read-only).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PUSHGATE_DATA_DIR=/data \
    PUSHGATE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8086
ENTRYPOINT ["/usr/local/bin/pushgate"]
CMD ["serve"]
