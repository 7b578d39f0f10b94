# The parkenergy image: collector, analytics, simulator and CLI (docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY parkdata ./parkdata
COPY collector ./collector
COPY analytics ./analytics
COPY dashboards ./dashboards
COPY simulators ./simulators
COPY parkenergy ./parkenergy
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/parkenergy --create-home parkenergy

USER parkenergy
ENV PARKENERGY_HOME=/var/lib/parkenergy
EXPOSE 9108
CMD ["parkenergy", "--help"]
