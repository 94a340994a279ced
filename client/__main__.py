"""``python -m docchain.client``: the same as the ``docchain`` console script."""

from docchain.client.cli import main

main()
