# Strata images, built from Debian bookworm packages only.
#
#   docker build -t strata:dev .                      # all binaries (target "runtime")
#   docker build --target build -t strata-build .     # the build stage, with tests compiled
#
# One runtime image carries every Strata binary; the Helm chart (charts/strata) sets
# each container's command: strata-operator, strata-csi, strata-stored, and the CNI
# plugins copied from /opt/strata/cni. Keep the runtime package list in step with what the binaries link
# (check with: ldd BINARY | awk '{print $3}' | xargs dpkg -S).

FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN bash /tmp/install-deps.sh build && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake --preset release \
 && cmake --build --preset release \
 && cmake --install build/release --prefix /out

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libre2-9 libc-ares2 libssl3 \
      libboost-program-options1.74.0 libspdlog1.10 libfmt9 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 \
      ca-certificates \
      dmsetup e2fsprogs xfsprogs util-linux mount \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/ /usr/local/bin/
# CNI plugins (strata-cni and its strata-bandwidth/-sriov/-bond names); a DaemonSet of
# the chart copies them into the host's CNI bin directory.
COPY --from=build /out/lib/cni/ /opt/strata/cni/
RUN useradd --system --uid 65532 --no-create-home strata
# strata-stored needs to own its tier directories; node components (CSI, CNI) run
# as root through the chart's securityContext.
USER 65532
ENTRYPOINT ["/usr/local/bin/strata-stored"]
CMD ["--help"]
