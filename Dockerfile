# The Strata image, built from Debian bookworm packages only.
#
#   docker build -t strata:dev .                      # all binaries (target "runtime")
#   docker build --target build -t strata-build .     # the build stage, with tests compiled
#
# ONE runtime image with several entrypoints: it carries every binary `cmake --install` installs
# (strata-stored, strata-admin, strata-csi, strata-operator, strata-netd, kubectl-strata, strata-cni-ctl in
# /usr/local/bin; the strata-cni plugin, its strata-sriov/-bond/-bandwidth/-vnc names and strata-podresources in /opt/strata/cni), and the
# Helm chart sets `command:` per container. The default entrypoint is strata-stored; for another
# binary: docker run --entrypoint strata-operator strata:dev --help
#
# The runtime stage installs the package of every shared library the binaries link, grouped by
# purpose below. The test image_runtime_libs (tests/image/runtime_libs_test.sh) checks that every
# library ldd lists for every installed binary comes from these packages, their dependencies or
# the base image, and names the package to add when one is missing.

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
      # gRPC and protobuf (strata-stored, strata-admin, strata-csi, strata-operator); OpenSSL also
      # for strata-csi's volume-name hashes and the operator's TLS to the API server
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libre2-9 libc-ares2 libssl3 \
      # flags (strata-stored, -admin, -csi, -operator) and logging (strata-stored, -csi,
      # -operator; the CNI binaries too in a sanitizer build)
      libboost-program-options1.74.0 libspdlog1.10 libfmt9 \
      # /metrics endpoints (strata-stored, strata-operator)
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 \
      # the operator's Kubernetes client: HTTP, TLS and watches (cpprestsdk, which brings
      # libbrotli1), kubeconfig parsing (libyaml)
      libcpprest2.10 libyaml-0-2 \
      # netlink (strata-cni, strata-cni-ctl) and dedup hashes (strata-stored): the release build
      # links libnl statically and inlines xxHash, but a build without libnl's static archives or
      # a sanitizer build (linked without --as-needed; the one the test checks) needs them
      libnl-3-200 libnl-route-3-200 libxxhash0 \
      # TLS roots
      ca-certificates \
      # what strata-csi's node service runs: dmsetup (multipath tables), blkid, mkfs.ext4,
      # resize2fs, mkfs.xfs
      dmsetup e2fsprogs xfsprogs util-linux mount \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/ /usr/local/bin/
# CNI plugins (strata-cni, its strata-bandwidth/-sriov/-bond/-vnc names, strata-podresources); strata-netd (a DaemonSet) of
# the chart copies them into the host's CNI bin directory.
COPY --from=build /out/lib/cni/ /opt/strata/cni/
RUN useradd --system --uid 65532 --no-create-home strata
# strata-stored needs to own its tier directories; node components (CSI, CNI) run
# as root through the chart's securityContext.
USER 65532
ENTRYPOINT ["/usr/local/bin/strata-stored"]
CMD ["--help"]
