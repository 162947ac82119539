"""What the book shows, as tested functions: tables and verdict rendering (``tables``), figures
(``figures``, ``tradeoff``), the abstract (``abstract``), project size (``project_size``) and the
browser/PDF check (``check``). The chapters in book/ hold prose, glue and calls to these.
The top of the house: may import anything below it."""
