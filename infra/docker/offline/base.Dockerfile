# A stand-in for node:20-bookworm-slim on a machine that cannot reach Docker Hub: a Debian root
# file system (debootstrap --variant=minbase, imported as DEBIAN) with this machine's own node and
# npm, its CA bundle (npm must trust whatever the machine trusts to reach its registry) and the
# user `node` (uid 1000, home /home/node) the official image has.
#
# The build context holds three things, gathered from the machine:
#   node                 the node binary (built for a glibc no newer than DEBIAN's)
#   npm/                 the npm package directory (`npm root -g`/npm)
#   ca-certificates.crt  the CA bundle
# test/helpers/container-images.ts builds it this way; by hand (the context folder holding the three):
#   debootstrap --variant=minbase bookworm rootfs http://deb.debian.org/debian
#   tar -C rootfs -c . | docker import - corral-offline/debian:bookworm
#   docker build --build-arg DEBIAN=corral-offline/debian:bookworm -f base.Dockerfile -t corral-offline/node CONTEXT
ARG DEBIAN=corral-offline/debian:bookworm
FROM ${DEBIAN}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
