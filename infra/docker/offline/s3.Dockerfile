# A stand-in for MinIO on a machine that cannot reach Docker Hub: s3rver (the S3 server the test
# suites use, from npm) behind test/helpers/s3-server.cjs, on BASE (a Node image). It listens on
# port 9000 with its data in /data and creates the buckets named on its command line; it accepts
# the access key S3RVER with the secret S3RVER.
ARG BASE=corral-offline/node
FROM ${BASE}
WORKDIR /srv
RUN npm install --no-audit --no-fund --no-save s3rver@3.7.1 && npm cache clean --force \
 && mkdir -p /data && chown node:node /data
COPY test/helpers/s3-server.cjs /srv/s3-server.cjs
USER node
VOLUME /data
EXPOSE 9000
ENTRYPOINT ["node", "--openssl-legacy-provider", "/srv/s3-server.cjs", "--address", "0.0.0.0", "--port", "9000", "--dir", "/data"]
CMD ["--bucket", "corral-blobs"]
