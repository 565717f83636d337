# The service image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md __main__.py ./
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY api ./api
RUN pip install --no-cache-dir . && useradd --create-home subledger
USER subledger
EXPOSE 8000
CMD ["subledger", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
