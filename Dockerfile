# prepbot: migrations, then the bot, as a non-root user. SQLite lives in the /data volume unless
# DATABASE_URL points elsewhere (PostgreSQL is supported out of the box).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/prepbot.db \
    HOST=0.0.0.0 \
    PORT=3000

RUN useradd --create-home --uid 10001 prepbot && mkdir /data && chown prepbot /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY question_bank ./question_bank
COPY migrations ./migrations
RUN pip install '.[postgres]'

USER prepbot
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"3000\")}/healthz', timeout=4)" || exit 1

CMD ["sh", "-c", "prepbot db upgrade && exec prepbot run"]
