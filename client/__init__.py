"""The `docchain` command line (Typer + Rich). Talks to the API over HTTP only and to Ethereum nodes
directly for independent verification; never imports docchain.api."""
