"""Year-end report: Baton's example workload.

A simulated company keeps its books in three source systems (finance, ERP, CRM). Every
department or branch is a partition: its records are extracted, cleaned into monthly figures,
summarised and reported on its own, and headquarters sums every department into the company
report. See README.md in this folder.

Modules:
    company     the simulated source systems and a CLI that writes them out as CSV files
    figures     the reported figures, exact money (integer cents) and KPI arithmetic
    processing  pure cleaning and monthly aggregation of source rows
    reports     CSV and HTML writers shared by the department and HQ reports
    tasks       the graph's Python callables (one ``TaskContext`` argument each)
    render_hq   the HQ report, run by the graph as an argv command
"""
