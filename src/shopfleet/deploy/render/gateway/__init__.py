"""The nginx gateway of every one-machine and Compose run: one model, one renderer."""
