# syntax=docker/dockerfile:1
#
# presenced's container image: a static binary (CGO_ENABLED=0) on
# distroless's static base, run as its nonroot user (65532). Build it from
# the repository's root:
#
#   docker build --build-arg VERSION=v1.4.0 --build-arg REVISION=$(git rev-parse --short HEAD) -t presenced .
#
# cmd/presenced's TestDockerfile runs the go build command below and
# starts the binary it makes with this file's and deploy/compose.yaml's
# settings; keep the command on one RUN line of its own.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG REVISION=unknown
# -buildvcs=false: the build context holds no git history (.dockerignore),
# so the version and commit are stamped in from the build arguments.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X github.com/presenced/presenced/internal/version.stamped=${VERSION} -X github.com/presenced/presenced/internal/version.stampedRevision=${REVISION}" -o /out/presenced ./cmd/presenced

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/presenced /presenced
USER nonroot:nonroot
# 8080: the API, /ws and the demo; 9090: the operators' port, when
# PRESENCE_ADMIN_ADDR=:9090 opens it.
EXPOSE 8080 9090
ENV PRESENCE_ADDR=:8080 PRESENCE_LOG_FORMAT=json
ENTRYPOINT ["/presenced"]
