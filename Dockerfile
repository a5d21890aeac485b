# Visual privacy audit: the dashboard in a container (CPU, or GPU with the NVIDIA runtime).
#   docker build -t privacy-audit .
#   docker build -t privacy-audit --build-arg PRIORS="google/ddpm-cifar10-32" .
#   docker run --rm -p 7860:7860 privacy-audit            # add --gpus all on a GPU host
FROM python:3.11-slim

# Hub priors cached at build time (space-separated ids); the embedded prior ships in the image.
ARG PRIORS="google/ddpm-cifar10-32 google/ddpm-celebahq-256"
# LPIPS backbones fetched at build time when the network allows (alex, vgg)
ARG LPIPS_NETS="alex"
# priors prepared at build time (reference set, domain calibration, baseline; empty: all of
# PRIORS). On a 2-core builder CIFAR-10 takes about 10 minutes and CelebA-HQ-256 about 35;
# a prior left out is prepared at launch, in the background (seconds on a GPU)
ARG PREPARE=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/user \
    HF_HOME=/home/user/.cache/huggingface \
    TORCH_HOME=/home/user/.cache/torch \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_TEMP_DIR=/tmp/gradio \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860

RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY --chown=user:user requirements.txt ./
RUN pip install -r requirements.txt

USER 1000
COPY --chown=user:user scripts/__init__.py scripts/fetch_assets.py scripts/
COPY --chown=user:user audit_engine/ audit_engine/
# never fails the build: offline, the app reports these priors as unavailable
RUN python -m scripts.fetch_assets --priors ${PRIORS} --lpips ${LPIPS_NETS}

COPY --chown=user:user . .
# never fails the build either: a prior that could not be fetched is reported and skipped
RUN python -m audit_engine prepare embedded ${PREPARE:-$PRIORS} || echo "some priors were not prepared"

# everything the app needs is in the image now: it never reaches for the Hub at run time;
# it offers the priors cached above (and the embedded one)
ENV HF_HUB_OFFLINE=1 \
    AUDIT_PRIORS="${PRIORS}"
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/config', timeout=4)"]
CMD ["python", "app.py"]
