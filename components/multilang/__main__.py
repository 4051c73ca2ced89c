"""``python -m <components>.multilang ENGINE_ADDRESS``: serve the multi-language package."""

from . import serve

if __name__ == "__main__":
    serve()
