# syntax=docker/dockerfile:1
# Tessera in a container: `docker build -t tessera .` then
#   docker run -p 8080:8080 -v tessera-data:/data -e TESSERA_ISSUER=http://localhost:8080 tessera
# SQLite lives in the /data volume by default; set TESSERA_DATABASE_URL=postgres://… to share a
# database between instances (compose.yaml runs two that way).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN sh docker/build.sh /out

FROM debian:bookworm-slim
# curl only for HEALTHCHECK; ca-certificates for https:// PostgreSQL and webhook receivers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tessera \
 && mkdir -p /data && chown tessera:tessera /data
COPY --from=build /out/tessera /usr/local/bin/tessera
USER tessera
WORKDIR /data
VOLUME ["/data"]
# The issuer is the URL clients reach this server at: set it to yours (the default suits
# `docker run -p 8080:8080` opened at http://localhost:8080).
ENV TESSERA_BIND=0.0.0.0:8080 \
    TESSERA_ISSUER=http://localhost:8080 \
    TESSERA_DATABASE_URL=sqlite:///data/tessera.db \
    TESSERA_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["tessera"]
CMD ["serve"]
