# syntax=docker/dockerfile:1
# minkd container image: built with the official Swift image, run on Debian slim as a numeric
# non-root user.
#
#   docker build -t minkd:0.1.0 .
#   docker run -p 6465:6465 -v minkd-data:/var/lib/minkd \
#       -v "$PWD/minkd.yaml:/etc/minkd/minkd.yaml:ro" minkd:0.1.0
#
# The container listens on 0.0.0.0:6465, so the mounted config must enable auth with at least
# one token (`auth.enabled: true`, hashes from `minkd hash-token`); minkd refuses to start
# otherwise. With MINKD_DATABASE_URL (or storage.url) it runs on PostgreSQL, else on SQLite in
# the /var/lib/minkd volume, which one container owns at a time. See docs/deploy.md.
#
# The Swift image must be at least as new as the highest swift-tools-version among the resolved
# dependencies (6.2 today) and the README's toolchain (6.3); scripts/check-deploy checks this,
# and Package.swift pins exact dependency versions so the image builds what CI tests.

FROM swift:6.3.1-bookworm AS build
# Debian versions are not pinned: bookworm's security updates replace the pinned versions in
# the archive, and a pinned image build then fails; the Swift image tag pins the base.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-dev libpq-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
# Package.swift declares the test and benchmark targets; SwiftPM refuses a manifest whose target
# folders are missing, even to build another product (scripts/check-deploy checks this).
COPY Tests ./Tests
COPY Benchmarks ./Benchmarks
RUN swift build -c release --product minkd --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/minkd" /out/minkd

FROM debian:bookworm-slim
# Runtime libraries only: libpq5, libsqlite3-0, zlib1g (the Swift runtime is linked in
# statically); ca-certificates for PostgreSQL over TLS. No curl: the health check is
# `minkd healthcheck`. Unpinned for the reason given in the build stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 libsqlite3-0 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 minkd \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/minkd --no-create-home --shell /usr/sbin/nologin minkd \
    && install -d -m 0700 -o 10001 -g 10001 /var/lib/minkd \
    && install -d -m 0755 /etc/minkd
COPY --from=build /out/minkd /usr/local/bin/minkd
COPY config/minkd.example.yaml /etc/minkd/minkd.example.yaml
# serve and healthcheck read the same settings: a mounted config file, the listen address on
# every interface, the volume as the SQLite data dir, JSON logs.
ENV MINKD_CONFIG=/etc/minkd/minkd.yaml \
    MINKD_LISTEN=0.0.0.0:6465 \
    MINKD_DATA_DIR=/var/lib/minkd \
    MINKD_LOG_FORMAT=json
# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001:10001
VOLUME ["/var/lib/minkd"]
EXPOSE 6465
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/minkd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/minkd"]
CMD ["serve"]
