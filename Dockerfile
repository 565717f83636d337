# The service image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
# The locked versions first (requirements/runtime.lock, made by requirements/refresh: those CI
# tests), then the project itself, which resolves nothing more.
COPY requirements/runtime.lock ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md __main__.py ./
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY api ./api
RUN pip install --no-cache-dir --no-deps . && useradd --create-home subledger
USER subledger
EXPOSE 8000
CMD ["subledger", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
