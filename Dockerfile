# syntax=docker/dockerfile:1
# rlog container image: one binary, /usr/local/bin/rlog, for both roles (ROLE=master|sentinel).
#
#   docker build -t rlog:0.1.0 .
#   docker run --rm -p 8080:8080 rlog:0.1.0            # a master with no sentinels
#
# Stage 1 builds on Debian bookworm with the -dev packages that scripts/install-deps.sh
# installs (the same script the README uses), runs the unit tests, and works out which
# runtime packages the binary links against. Stage 2 is bookworm-slim with only those
# runtime libraries, running as the numeric non-root user 65532.

FROM debian:bookworm AS build
ARG BUILD_TYPE=RelWithDebInfo
# ctest -E: tests whose names match this regex are skipped (process-level tests need
# dnsmasq, Prometheus and the like). Empty: run everything.
ARG CTEST_EXCLUDE=process
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# Dependencies first, so editing the sources does not reinstall them.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && bash scripts/install-deps.sh
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" -DRLOG_BUILD_TESTS=ON \
 && ninja -C build \
 && ctest --test-dir build --output-on-failure --no-tests=error -j "$(nproc)" \
      ${CTEST_EXCLUDE:+-E "$CTEST_EXCLUDE"} -LE "process|observability|offline" \
 && install -D -m 0755 -s build/src/app/rlog /out/usr/local/bin/rlog
# The Debian packages that own every shared library the binary loads (libpistache0,
# libgrpc++1.51, libprotobuf32, libyaml-cpp0.7, libprometheus-cpp-core1.0, ... as linked):
# the runtime stage installs exactly these.
RUN <<'EOS'
set -eu
ldd /out/usr/local/bin/rlog > /out/ldd.txt
cat /out/ldd.txt
if grep -q 'not found' /out/ldd.txt; then echo "unresolved libraries" >&2; exit 1; fi
awk '/=> \// { print $3 }' /out/ldd.txt | xargs -r readlink -f | sort -u > /out/libs.txt
: > /out/packages.txt
while read -r lib; do
  # Merged /usr: dpkg may know the file as /lib/... rather than /usr/lib/...
  pkg=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1)
  if [ -z "$pkg" ]; then pkg=$(dpkg -S "${lib#/usr}" 2>/dev/null | head -n1 | cut -d: -f1); fi
  if [ -z "$pkg" ]; then echo "no package owns $lib" >&2; exit 1; fi
  echo "$pkg" >> /out/packages.txt
done < /out/libs.txt
sort -u -o /out/packages.txt /out/packages.txt
if grep -- '-dev$' /out/packages.txt; then echo "a -dev package is needed at run time" >&2; exit 1; fi
echo "runtime packages:"
cat /out/packages.txt
EOS

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/packages.txt /usr/local/share/rlog/runtime-packages.txt
RUN apt-get update -q \
 && xargs -a /usr/local/share/rlog/runtime-packages.txt \
      apt-get install -y -q --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && groupadd --system --gid 65532 rlog \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin rlog \
 && install -d -o 65532 -g 65532 -m 0750 /data
COPY --from=build /out/usr/local/bin/rlog /usr/local/bin/rlog
# Fails the build if a library is missing at run time.
RUN ldd /usr/local/bin/rlog | (! grep 'not found') && /usr/local/bin/rlog --version

LABEL org.opencontainers.image.title="rlog" \
      org.opencontainers.image.description="Replicated, ordered message log: master and sentinels in one binary"
USER 65532:65532
WORKDIR /data
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/rlog"]
