"""The feedback page's HTML export: nbconvert's HTMLExporter without its BeautifulSoup pass.

nbconvert 7's ``HTMLExporter.from_notebook_node`` renders the template, then
parses its own page (about 236 kB for lesson 04) with BeautifulSoup to give
images without an ``alt`` a placeholder one and to make input and output
areas focusable (``tabindex``): about a third of the feedback step's time.
It sanitises nothing (:mod:`autograder.sanitize` does, after it) and
``tabindex`` is not on the sanitiser's allow-list, so only the ``alt`` text
reaches a student; it is added here by one regular expression over the
template's own ``<img`` tags (a submission's text reaches the page escaped,
so ``<img`` in it is never a tag; raw HTML outputs are tags and get the
same ``alt`` the soup gave them).
"""

from __future__ import annotations

import re
from typing import Any

from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

__all__ = ["FeedbackExporter", "NO_ALT"]

NO_ALT = "No description has been provided for this image"  # nbconvert's own placeholder
_IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\balt\s*=)", re.I)


class FeedbackExporter(HTMLExporter):
    """HTMLExporter's page, rendered the same way, with the ``alt`` placeholder but no soup."""

    def from_notebook_node(self, nb, resources: dict[str, Any] | None = None, **kw: Any):
        # The same steps as HTMLExporter.from_notebook_node (nbconvert 7.17), up to its soup.
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight_code = self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
        resources = self._init_resources(resources)
        filter_data_type = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                                 resources=resources)
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", filter_data_type)
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return _IMG_WITHOUT_ALT.sub(f'<img alt="{NO_ALT}"', html), resources
