# A stand-in for postgres:16 on a machine that cannot reach Docker Hub: Debian's PostgreSQL (15 on
# bookworm) from the distribution's mirror, on BASE (a Debian image with apt). It reads the
# official image's POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on first start, keeps its data
# in /var/lib/postgresql/data and has pg_isready on PATH, so docker-compose.yml's service works
# unchanged.
ARG BASE=corral-offline/node
FROM ${BASE}
# No cluster from the package: the entrypoint makes the one the environment describes.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)" /usr/local/lib/postgresql-bin \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/local/lib/postgresql-bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# Fast shutdown, as the official image: SIGTERM would wait for every client to disconnect.
STOPSIGNAL SIGINT
ENTRYPOINT ["sh", "/usr/local/bin/postgres-entrypoint.sh"]
