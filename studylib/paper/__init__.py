"""The paper under test, as code: its equations (``equations``), tables (``tables``), the §7.1
decision function (``decision``) and the criteria written before the data (``criteria``, with
their dated change log in ``criteria_log``). Imports only the core (``stats``)."""
