# minkd container image: build with the official Swift image, run on Debian slim.
#   docker build -t minkd .
#   docker run -p 6465:6465 -v minkd-data:/var/lib/minkd -v $PWD/minkd.yaml:/etc/minkd/minkd.yaml:ro minkd
# The container listens on 0.0.0.0, so the config must enable auth (auth.enabled: true with
# tokens), or pass --insecure for a throwaway local run.
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-dev libpq-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product minkd --static-swift-stdlib \
    && install -D "$(swift build -c release --show-bin-path)/minkd" /out/minkd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-0 libpq5 zlib1g ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/minkd --create-home minkd
COPY --from=build /out/minkd /usr/local/bin/minkd
COPY config/minkd.example.yaml /etc/minkd/minkd.example.yaml
USER minkd
VOLUME /var/lib/minkd
EXPOSE 6465
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fs http://127.0.0.1:6465/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/minkd"]
CMD ["serve", "--listen", "0.0.0.0:6465", "--data-dir", "/var/lib/minkd", "--config", "/etc/minkd/minkd.yaml", "--log-format", "json"]
