"""A certificate of completion (chain/certificate.py) drawn as a PDF, the same for the CLI and the API.

fpdf2 draws the PDF and segno the QR code (both pure Python); each is imported by :func:`render`, so that importing
this module costs nothing (the CLI's start imports it).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

# The QR code's modules in the PNG drawn into the PDF, and the quiet zone around them the QR standard asks for.
QR_SCALE = 8
QR_BORDER = 4
QR_ERROR = "m"  # 15% of the code may be smudged or folded and it still reads
QR_SIZE_MM = 42.0
FONT_SIZE = 9.0
LINE_MM = 5.2


def render(lines: Sequence[str], verify_url: str) -> bytes:
    """A certificate's ``lines`` (:meth:`Certificate.text_lines`: the title, the note, then the claims) as an
    A4 PDF, each drawn as one line of text so that a text extractor gives it back as printed, with the
    QR code of ``verify_url`` at the top right."""
    import segno
    from fpdf import FPDF

    title, note, *claims = lines
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("docchain")
    pdf.set_auto_page_break(auto=True, margin=15)  # 16 signers' lines run onto a second page
    pdf.add_page()
    png = io.BytesIO()
    segno.make(verify_url, error=QR_ERROR).save(png, kind="png", scale=QR_SCALE, border=QR_BORDER)
    png.seek(0)
    pdf.image(png, x=pdf.w - pdf.r_margin - QR_SIZE_MM, y=pdf.t_margin, w=QR_SIZE_MM, h=QR_SIZE_MM)
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(text=title, new_x="LMARGIN", new_y="NEXT", h=9)
    pdf.set_font("Helvetica", size=7)
    pdf.cell(text=note, new_x="LMARGIN", new_y="NEXT", h=LINE_MM)
    pdf.set_y(pdf.t_margin + QR_SIZE_MM + 4)
    pdf.set_font("Helvetica", size=FONT_SIZE)
    for claim in claims:
        pdf.cell(text=claim, new_x="LMARGIN", new_y="NEXT", h=LINE_MM)
    return bytes(pdf.output())


def qr_holds(image: Image, text: str) -> bool:
    """Whether ``image``, a certificate's QR code read back from its PDF, is the code :func:`render` draws for
    ``text``: each module, sampled at its centre, is segno's for ``text``. A code for any other text differs in
    its modules; so would one drawn by another QR library for the same text, which no certificate is."""
    import segno

    matrix = segno.make(text, error=QR_ERROR).matrix
    side = len(matrix) + 2 * QR_BORDER
    pixels = image.convert("L")
    width, height = pixels.size
    if width != height or width % side:
        return False
    scale = width // side

    def dark(x: int, y: int) -> bool:
        value = pixels.getpixel(((QR_BORDER + x) * scale + scale // 2, (QR_BORDER + y) * scale + scale // 2))
        return isinstance(value, int | float) and value < 128

    return all(dark(x, y) == bool(module) for y, row in enumerate(matrix) for x, module in enumerate(row))
