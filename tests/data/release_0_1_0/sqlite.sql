BEGIN TRANSACTION;
CREATE TABLE attempts (
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    attempt     INTEGER NOT NULL,
    worker_id   TEXT,
    outcome     TEXT NOT NULL,
    started_at  REAL,
    finished_at REAL NOT NULL,
    exit_code   INTEGER,
    error       TEXT,
    stdout      TEXT NOT NULL DEFAULT '',
    stderr      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, attempt)
);
INSERT INTO "attempts" VALUES(2,1,'local1-7083-68a07c','succeeded',1.79622134648391652105e+09,1.79622134704390120502e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_erp[sales] extracted 96 erp rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/sales/erp.csv
');
INSERT INTO "attempts" VALUES(8,1,'local1-7083-68a07c','succeeded',1.79622134704913091664e+09,1.79622134705863928795e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_erp[hr] extracted 48 erp rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/hr/erp.csv
');
INSERT INTO "attempts" VALUES(9,1,'local1-7083-68a07c','succeeded',1.79622134706045675275e+09,1.79622134706801748278e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_finance[hr] extracted 145 finance rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/hr/finance.csv
');
INSERT INTO "attempts" VALUES(13,1,'local1-7083-68a07c','succeeded',1.79622134706923079492e+09,1.79622134708553123473e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_crm[branch_a] extracted 213 crm rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/crm.csv
');
INSERT INTO "attempts" VALUES(14,1,'local1-7083-68a07c','succeeded',1.79622134708961415285e+09,1.79622134709672760964e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_erp[branch_a] extracted 48 erp rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/erp.csv
');
INSERT INTO "attempts" VALUES(7,1,'local1-7083-68a07c','succeeded',1.79622134648404717448e+09,1796221347.10348,NULL,NULL,'','2026-12-02T14:22:27 extract_crm[hr] extracted 117 crm rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/hr/crm.csv
');
INSERT INTO "attempts" VALUES(15,1,'local1-7083-68a07c','succeeded',1.79622134709787297252e+09,1.79622134711054873461e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_finance[branch_a] extracted 141 finance rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/finance.csv
');
INSERT INTO "attempts" VALUES(3,1,'local1-7083-68a07c','succeeded',1.79622134648399472238e+09,1.79622134711073398586e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_finance[sales] extracted 154 finance rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/sales/finance.csv
');
INSERT INTO "attempts" VALUES(10,1,'local1-7083-68a07c','succeeded',1.79622134710491371161e+09,1.79622134712748265268e+09,NULL,NULL,'','2026-12-02T14:22:27 process[hr] processed 310 rows (3 duplicates dropped) into /tmp/tmpyyrcs1_w/year_end_report_out/work/hr/processed.json
');
INSERT INTO "attempts" VALUES(11,1,'local1-7083-68a07c','succeeded',1.79622134712908434863e+09,1.79622134713954973222e+09,NULL,NULL,'','2026-12-02T14:22:27 summarize[hr] revenue 744187369 cents, operating profit 106021108 cents
');
INSERT INTO "attempts" VALUES(16,1,'local1-7083-68a07c','succeeded',1.79622134711347293846e+09,1.79622134715160346033e+09,NULL,NULL,'','2026-12-02T14:22:27 process[branch_a] processed 402 rows (4 duplicates dropped) into /tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/processed.json
');
INSERT INTO "attempts" VALUES(12,1,'local1-7083-68a07c','succeeded',1.79622134714090704913e+09,1.79622134715167689322e+09,NULL,NULL,'','2026-12-02T14:22:27 dept_report[hr] wrote /tmp/tmpyyrcs1_w/year_end_report_out/departments/hr.html and /tmp/tmpyyrcs1_w/year_end_report_out/departments/hr.csv
');
INSERT INTO "attempts" VALUES(17,1,'local1-7083-68a07c','succeeded',1.79622134715304160117e+09,1.79622134715512943269e+09,NULL,NULL,'','2026-12-02T14:22:27 summarize[branch_a] revenue 1192676049 cents, operating profit 184522175 cents
');
INSERT INTO "attempts" VALUES(1,1,'local1-7083-68a07c','succeeded',1.7962213464837248325e+09,1.79622134715627408026e+09,NULL,NULL,'','2026-12-02T14:22:27 extract_crm[sales] extracted 392 crm rows for 2024 from simulated source systems to /tmp/tmpyyrcs1_w/year_end_report_out/work/sales/crm.csv
');
INSERT INTO "attempts" VALUES(18,1,'local1-7083-68a07c','succeeded',1.79622134715612030023e+09,1.79622134716084933285e+09,NULL,NULL,'','2026-12-02T14:22:27 dept_report[branch_a] wrote /tmp/tmpyyrcs1_w/year_end_report_out/departments/branch_a.html and /tmp/tmpyyrcs1_w/year_end_report_out/departments/branch_a.csv
');
INSERT INTO "attempts" VALUES(4,1,'local1-7083-68a07c','succeeded',1.79622134715709567062e+09,1.79622134718264436729e+09,NULL,NULL,'','2026-12-02T14:22:27 process[sales] processed 642 rows (6 duplicates dropped) into /tmp/tmpyyrcs1_w/year_end_report_out/work/sales/processed.json
');
INSERT INTO "attempts" VALUES(5,1,'local1-7083-68a07c','succeeded',1.79622134718396830564e+09,1.79622134718592572216e+09,NULL,NULL,'','2026-12-02T14:22:27 summarize[sales] revenue 2503680879 cents, operating profit 515653047 cents
');
INSERT INTO "attempts" VALUES(19,1,'local1-7083-68a07c','succeeded',1.79622134718889594076e+09,1.79622134719062328343e+09,NULL,NULL,'','2026-12-02T14:22:27 hq_summary[-] summed 3 departments: revenue 4440544297 cents
');
INSERT INTO "attempts" VALUES(6,1,'local1-7083-68a07c','succeeded',1.79622134718756556515e+09,1.79622134719725894927e+09,NULL,NULL,'','2026-12-02T14:22:27 dept_report[sales] wrote /tmp/tmpyyrcs1_w/year_end_report_out/departments/sales.html and /tmp/tmpyyrcs1_w/year_end_report_out/departments/sales.csv
');
INSERT INTO "attempts" VALUES(20,1,'local1-7083-68a07c','succeeded',1.79622134719455623622e+09,1.79622134748835301405e+09,0,NULL,'wrote /tmp/tmpyyrcs1_w/year_end_report_out/hq/company.html and /tmp/tmpyyrcs1_w/year_end_report_out/hq/company.csv
','');
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    event_id INTEGER,
    task_id  INTEGER,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    cause    TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO "audit" VALUES(1,1.79622134549025034904e+09,NULL,NULL,'operator','graph.registered','/work/main/examples/year_end_report/graph.yaml','{"graph":"year_end_report","version":1}');
INSERT INTO "audit" VALUES(2,1.79622134549352979659e+09,1,NULL,'client','event.submitted','graph year_end_report v1','{"key":null}');
INSERT INTO "audit" VALUES(3,1.79622134550448679926e+09,NULL,NULL,'vm-7082-18bf69','leadership.acquired','took the controller role','{"role":"controller"}');
INSERT INTO "audit" VALUES(4,1.79622134551157641409e+09,1,NULL,'controller','event.expanded','new event','{"tasks":20,"ready":9,"nodes":{"extract_crm":3,"extract_erp":3,"extract_finance":3,"process":3,"summarize":3,"dept_report":3,"hq_summary":1,"hq_report":1}}');
INSERT INTO "audit" VALUES(5,1.79622134643038058278e+09,NULL,NULL,'worker:local1-7083-68a07c','worker.registered','start','{"capacity":{"slots":4},"labels":["erp"]}');
INSERT INTO "audit" VALUES(6,1.79622134704417443272e+09,1,2,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_erp","partition":"sales"}');
INSERT INTO "audit" VALUES(7,1796221347.05886,1,8,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_erp","partition":"hr"}');
INSERT INTO "audit" VALUES(8,1.79622134706822705269e+09,1,9,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_finance","partition":"hr"}');
INSERT INTO "audit" VALUES(9,1.7962213470857813358e+09,1,13,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_crm","partition":"branch_a"}');
INSERT INTO "audit" VALUES(10,1.79622134709695291518e+09,1,14,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_erp","partition":"branch_a"}');
INSERT INTO "audit" VALUES(11,1.79622134709695291518e+09,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"extract_erp"}');
INSERT INTO "audit" VALUES(12,1.79622134710368561746e+09,1,7,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_crm","partition":"hr"}');
INSERT INTO "audit" VALUES(13,1.79622134710368561746e+09,1,10,'controller','task.ready','extract_crm[hr] succeeded','{"node":"process","partition":"hr"}');
INSERT INTO "audit" VALUES(14,1.79622134711086201669e+09,1,15,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_finance","partition":"branch_a"}');
INSERT INTO "audit" VALUES(15,1.79622134711086201669e+09,1,3,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_finance","partition":"sales"}');
INSERT INTO "audit" VALUES(16,1.79622134711086201669e+09,1,16,'controller','task.ready','extract_finance[branch_a] succeeded','{"node":"process","partition":"branch_a"}');
INSERT INTO "audit" VALUES(17,1.79622134711086201669e+09,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"extract_finance"}');
INSERT INTO "audit" VALUES(18,1.79622134712770819666e+09,1,10,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"process","partition":"hr"}');
INSERT INTO "audit" VALUES(19,1.79622134712770819666e+09,1,11,'controller','task.ready','process[hr] succeeded','{"node":"summarize","partition":"hr"}');
INSERT INTO "audit" VALUES(20,1.79622134713979101187e+09,1,11,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"summarize","partition":"hr"}');
INSERT INTO "audit" VALUES(21,1.79622134713979101187e+09,1,12,'controller','task.ready','summarize[hr] succeeded','{"node":"dept_report","partition":"hr"}');
INSERT INTO "audit" VALUES(22,1.79622134715188860897e+09,1,16,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"process","partition":"branch_a"}');
INSERT INTO "audit" VALUES(23,1.79622134715188860897e+09,1,12,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"dept_report","partition":"hr"}');
INSERT INTO "audit" VALUES(24,1.79622134715188860897e+09,1,17,'controller','task.ready','process[branch_a] succeeded','{"node":"summarize","partition":"branch_a"}');
INSERT INTO "audit" VALUES(25,1.79622134715528559683e+09,1,17,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"summarize","partition":"branch_a"}');
INSERT INTO "audit" VALUES(26,1.79622134715528559683e+09,1,18,'controller','task.ready','summarize[branch_a] succeeded','{"node":"dept_report","partition":"branch_a"}');
INSERT INTO "audit" VALUES(27,1.79622134715636658664e+09,1,1,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"extract_crm","partition":"sales"}');
INSERT INTO "audit" VALUES(28,1.79622134715636658664e+09,1,4,'controller','task.ready','extract_crm[sales] succeeded','{"node":"process","partition":"sales"}');
INSERT INTO "audit" VALUES(29,1.79622134715636658664e+09,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"extract_crm"}');
INSERT INTO "audit" VALUES(30,1.79622134716103434566e+09,1,18,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"dept_report","partition":"branch_a"}');
INSERT INTO "audit" VALUES(31,1.79622134718286347388e+09,1,4,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"process","partition":"sales"}');
INSERT INTO "audit" VALUES(32,1.79622134718286347388e+09,1,5,'controller','task.ready','process[sales] succeeded','{"node":"summarize","partition":"sales"}');
INSERT INTO "audit" VALUES(33,1.79622134718286347388e+09,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"process"}');
INSERT INTO "audit" VALUES(34,1.79622134718603444097e+09,1,5,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"summarize","partition":"sales"}');
INSERT INTO "audit" VALUES(35,1.79622134718603444097e+09,1,6,'controller','task.ready','summarize[sales] succeeded','{"node":"dept_report","partition":"sales"}');
INSERT INTO "audit" VALUES(36,1.79622134718603444097e+09,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"summarize"}');
INSERT INTO "audit" VALUES(37,1.79622134718603444097e+09,1,NULL,'controller','task.ready','node summarize succeeded','{"node":"hq_summary","tasks":1}');
INSERT INTO "audit" VALUES(38,1.79622134719074177736e+09,1,19,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"hq_summary","partition":""}');
INSERT INTO "audit" VALUES(39,1.79622134719074177736e+09,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"hq_summary"}');
INSERT INTO "audit" VALUES(40,1.79622134719074177736e+09,1,NULL,'controller','task.ready','node hq_summary succeeded','{"node":"hq_report","tasks":1}');
INSERT INTO "audit" VALUES(41,1.79622134719747638701e+09,1,6,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"dept_report","partition":"sales"}');
INSERT INTO "audit" VALUES(42,1.79622134719747638701e+09,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"dept_report"}');
INSERT INTO "audit" VALUES(43,1796221347.4888,1,20,'worker:local1-7083-68a07c','task.succeeded','attempt 1 succeeded','{"node":"hq_report","partition":""}');
INSERT INTO "audit" VALUES(44,1796221347.4888,1,NULL,'controller','node.succeeded','all tasks succeeded','{"node":"hq_report"}');
INSERT INTO "audit" VALUES(45,1796221347.4888,1,NULL,'controller','event.succeeded','no active tasks left','{"tasks":{"succeeded":20}}');
INSERT INTO "audit" VALUES(46,1.79622134751450014114e+09,NULL,NULL,'worker:local1-7083-68a07c','worker.stopped','shutdown','{}');
INSERT INTO "audit" VALUES(47,1.79622134855000710482e+09,2,NULL,'client','event.submitted','graph year_end_report v1','{"key":"ye-2025"}');
INSERT INTO "audit" VALUES(48,1.796221351648494482e+09,NULL,NULL,'vm-7101-80bc45','leadership.acquired','took the controller role','{"role":"controller"}');
INSERT INTO "audit" VALUES(49,1.79622135166317677492e+09,2,NULL,'controller','event.expanded','new event','{"tasks":14,"ready":6,"nodes":{"extract_crm":2,"extract_erp":2,"extract_finance":2,"process":2,"summarize":2,"dept_report":2,"hq_summary":1,"hq_report":1}}');
INSERT INTO "audit" VALUES(50,1.79622135339011335369e+09,3,NULL,'client','event.submitted','graph year_end_report v1','{"key":"ye-2026"}');
INSERT INTO "audit" VALUES(51,1.79622135387474703791e+09,3,NULL,'operator','event.cancel_requested','cancel','{}');
INSERT INTO "audit" VALUES(52,1.79622135387474703791e+09,3,NULL,'operator','event.cancelled','cancelled before expansion','{}');
CREATE TABLE event_nodes (
    event_id  INTEGER NOT NULL REFERENCES events (id),
    node      TEXT NOT NULL,
    total     INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    PRIMARY KEY (event_id, node)
);
INSERT INTO "event_nodes" VALUES(1,'extract_crm',3,0);
INSERT INTO "event_nodes" VALUES(1,'extract_erp',3,0);
INSERT INTO "event_nodes" VALUES(1,'extract_finance',3,0);
INSERT INTO "event_nodes" VALUES(1,'process',3,0);
INSERT INTO "event_nodes" VALUES(1,'summarize',3,0);
INSERT INTO "event_nodes" VALUES(1,'dept_report',3,0);
INSERT INTO "event_nodes" VALUES(1,'hq_summary',1,0);
INSERT INTO "event_nodes" VALUES(1,'hq_report',1,0);
INSERT INTO "event_nodes" VALUES(2,'extract_crm',2,2);
INSERT INTO "event_nodes" VALUES(2,'extract_erp',2,2);
INSERT INTO "event_nodes" VALUES(2,'extract_finance',2,2);
INSERT INTO "event_nodes" VALUES(2,'process',2,2);
INSERT INTO "event_nodes" VALUES(2,'summarize',2,2);
INSERT INTO "event_nodes" VALUES(2,'dept_report',2,2);
INSERT INTO "event_nodes" VALUES(2,'hq_summary',1,1);
INSERT INTO "event_nodes" VALUES(2,'hq_report',1,1);
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    type             TEXT NOT NULL,
    graph_id         INTEGER NOT NULL REFERENCES graphs (id),
    idem_key         TEXT UNIQUE,
    params           TEXT NOT NULL,
    state            TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    submitted_at     REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    tasks_total      INTEGER NOT NULL DEFAULT 0,
    tasks_active     INTEGER NOT NULL DEFAULT 0
, error TEXT);
INSERT INTO "events" VALUES(1,'year_end_report',1,NULL,'{"departments":["sales","hr","branch_a"],"out_dir":"year_end_report_out","source_dir":"","year":2024}','succeeded',0,1.79622134549352979659e+09,1.79622134551157641409e+09,1796221347.4888,20,0,NULL);
INSERT INTO "events" VALUES(2,'year_end_report',1,'ye-2025','{"departments":["sales","hr"],"out_dir":"year_end_report_out","source_dir":"","year":2025}','running',0,1.79622134855000710482e+09,1.79622135166317677492e+09,NULL,14,14,NULL);
INSERT INTO "events" VALUES(3,'year_end_report',1,'ye-2026','{"departments":["sales","marketing","engineering","operations","customer_service","branch_shanghai","branch_shenzhen","branch_chengdu"],"out_dir":"year_end_report_out","source_dir":"","year":2026}','cancelled',1,1.79622135339011335369e+09,NULL,1.79622135387474703791e+09,0,0,NULL);
CREATE TABLE graphs (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    event_type    TEXT NOT NULL,
    digest        TEXT NOT NULL,
    spec          TEXT NOT NULL,
    source        TEXT NOT NULL DEFAULT '',
    registered_at REAL NOT NULL,
    UNIQUE (name, version),
    UNIQUE (name, digest)
);
INSERT INTO "graphs" VALUES(1,'year_end_report',1,'year_end_report','bc84b70787db4c7dee4df7983a444495ec8bd4bf19679fec19ec8490abeae571','{"description": "Year-end report per department and branch, from finance, ERP and CRM data.", "event": "year_end_report", "graph": "year_end_report", "nodes": {"dept_report": {"after": [{"mode": "same", "node": "summarize"}], "barrier": false, "cost": {"slots": 1}, "description": "The department''s HTML and CSV report", "labels": [], "partitioned": true, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "run": "year_end_report.tasks:dept_report", "timeout_s": 300.0}, "extract_crm": {"after": [], "barrier": false, "cost": {"slots": 1}, "description": "Stage the department''s deals from the CRM", "labels": [], "partitioned": true, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "run": "year_end_report.tasks:extract_crm", "timeout_s": 300.0}, "extract_erp": {"after": [], "barrier": false, "cost": {"slots": 1}, "description": "Stage the department''s orders and month-end stock from the ERP", "labels": ["erp"], "partitioned": true, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "run": "year_end_report.tasks:extract_erp", "timeout_s": 300.0}, "extract_finance": {"after": [], "barrier": false, "cost": {"slots": 1}, "description": "Stage the department''s general-ledger lines from the finance system", "labels": [], "partitioned": true, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "run": "year_end_report.tasks:extract_finance", "timeout_s": 300.0}, "hq_report": {"after": [{"mode": "broadcast", "node": "hq_summary"}], "barrier": false, "command": ["{python}", "-m", "year_end_report.render_hq"], "cost": {"slots": 1}, "description": "The company HTML and CSV report, rendered by an argv command", "labels": [], "partitioned": false, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "timeout_s": 300.0}, "hq_summary": {"after": [{"mode": "all", "node": "summarize"}], "barrier": false, "cost": {"slots": 2}, "description": "Sum every department''s figures into company totals (fan-in)", "labels": [], "partitioned": false, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "run": "year_end_report.tasks:hq_summary", "timeout_s": 300.0}, "process": {"after": [{"mode": "same", "node": "extract_finance"}, {"mode": "same", "node": "extract_erp"}, {"mode": "same", "node": "extract_crm"}], "barrier": false, "cost": {"slots": 1}, "description": "Clean the three extracts and compute the department''s monthly figures", "labels": [], "partitioned": true, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "run": "year_end_report.tasks:process", "timeout_s": 300.0}, "summarize": {"after": [{"mode": "same", "node": "process"}], "barrier": false, "cost": {"slots": 1}, "description": "Annual figures and KPIs for the department", "labels": [], "partitioned": true, "priority": 0, "retries": 2, "retry_backoff": 2.0, "retry_delay_s": 1.0, "retry_jitter": 0.1, "retry_max_delay_s": 300.0, "run": "year_end_report.tasks:summarize", "timeout_s": 300.0}}, "params": {"departments": {"default": ["sales", "marketing", "engineering", "operations", "customer_service", "branch_shanghai", "branch_shenzhen", "branch_chengdu"], "description": "Department and branch slugs; each one is a partition of the graph", "required": false, "type": "list"}, "out_dir": {"default": "year_end_report_out", "description": "Where work files and reports are written (relative to the worker''s cwd)", "required": false, "type": "string"}, "source_dir": {"default": "", "description": "Directory of source CSV files <source_dir>/<system>/<department>.csv, as written by ''python -m year_end_report.company --out DIR''; empty means the built-in simulated systems", "required": false, "type": "string"}, "year": {"default": 2025, "description": "Fiscal year to report on", "required": false, "type": "integer"}}, "partitions": {"param": "departments"}, "python_path": ["/work/main/examples"]}','/work/main/examples/year_end_report/graph.yaml',1.79622134549025034904e+09);
CREATE TABLE leadership (
    role       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL,
    since      REAL NOT NULL
);
INSERT INTO "leadership" VALUES('controller','vm-7101-80bc45',0.0,1.796221351648494482e+09);
CREATE TABLE requirements (
    id     INTEGER PRIMARY KEY,
    labels TEXT NOT NULL,
    cost   TEXT NOT NULL,
    UNIQUE (labels, cost)
);
INSERT INTO "requirements" VALUES(1,'[]','{"slots":1}');
INSERT INTO "requirements" VALUES(2,'["erp"]','{"slots":1}');
INSERT INTO "requirements" VALUES(3,'[]','{"slots":2}');
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL);
INSERT INTO "schema_migrations" VALUES(1,'initial',1.79622134547345638274e+09);
INSERT INTO "schema_migrations" VALUES(2,'leadership',1.79622134547345638274e+09);
INSERT INTO "schema_migrations" VALUES(3,'hot_path',1.79622134547345638274e+09);
INSERT INTO "schema_migrations" VALUES(4,'event_error',1.79622134547345638274e+09);
CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    node             TEXT NOT NULL,
    partition        TEXT NOT NULL,
    state            TEXT NOT NULL,
    pending          INTEGER NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    req_id           INTEGER NOT NULL REFERENCES requirements (id),
    attempt          INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    available_at     REAL,
    ready_at         REAL,
    worker_id        TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    started_at       REAL,
    finished_at      REAL,
    result           TEXT,
    error            TEXT, stage INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, node, partition)
);
INSERT INTO "tasks" VALUES(1,1,'extract_crm','sales','succeeded',0,0,1,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.79622134645861339569e+09,1.79622134715627408026e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/sales/crm.csv", "rows": 392}',NULL,0);
INSERT INTO "tasks" VALUES(2,1,'extract_erp','sales','succeeded',0,0,2,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.79622134645861339569e+09,1.79622134704390120502e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/sales/erp.csv", "rows": 96}',NULL,0);
INSERT INTO "tasks" VALUES(3,1,'extract_finance','sales','succeeded',0,0,1,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.79622134645861339569e+09,1.79622134711073398586e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/sales/finance.csv", "rows": 154}',NULL,0);
INSERT INTO "tasks" VALUES(4,1,'process','sales','succeeded',0,0,1,1,0,1.79622134715636658664e+09,1.79622134715636658664e+09,NULL,NULL,0,1.79622134715636658664e+09,1.79622134718264436729e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/sales/processed.json", "months": 12, "duplicates_dropped": 6}',NULL,1);
INSERT INTO "tasks" VALUES(5,1,'summarize','sales','succeeded',0,0,1,1,0,1.79622134718286347388e+09,1.79622134718286347388e+09,NULL,NULL,0,1.79622134718286347388e+09,1.79622134718592572216e+09,'{"department": "sales", "year": 2024, "figures": {"revenue": 2503680879, "cogs": 1317777552, "gross_profit": 1185903327, "opex": 199276000, "payroll": 470974280, "operating_profit": 515653047, "units_sold": 43313, "inventory_value": 28311494, "deals_won": 171, "deals_lost": 128, "deals_open": 91, "won_value": 728240000, "lost_value": 534380000, "pipeline_value": 392070000}, "kpis": {"gross_margin_pct": "47.4", "operating_margin_pct": "20.6", "payroll_share_pct": "18.8", "win_rate_pct": "57.2", "average_won_deal": "42587.13"}, "processed": "/tmp/tmpyyrcs1_w/year_end_report_out/work/sales/processed.json"}',NULL,2);
INSERT INTO "tasks" VALUES(6,1,'dept_report','sales','succeeded',0,0,1,1,0,1.79622134718603444097e+09,1.79622134718603444097e+09,NULL,NULL,0,1.79622134718603444097e+09,1.79622134719725894927e+09,'{"html": "/tmp/tmpyyrcs1_w/year_end_report_out/departments/sales.html", "csv": "/tmp/tmpyyrcs1_w/year_end_report_out/departments/sales.csv"}',NULL,3);
INSERT INTO "tasks" VALUES(7,1,'extract_crm','hr','succeeded',0,0,1,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.79622134645861339569e+09,1796221347.10348,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/hr/crm.csv", "rows": 117}',NULL,0);
INSERT INTO "tasks" VALUES(8,1,'extract_erp','hr','succeeded',0,0,2,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.79622134704417443272e+09,1.79622134705863928795e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/hr/erp.csv", "rows": 48}',NULL,0);
INSERT INTO "tasks" VALUES(9,1,'extract_finance','hr','succeeded',0,0,1,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1796221347.05886,1.79622134706801748278e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/hr/finance.csv", "rows": 145}',NULL,0);
INSERT INTO "tasks" VALUES(10,1,'process','hr','succeeded',0,0,1,1,0,1.79622134710368561746e+09,1.79622134710368561746e+09,NULL,NULL,0,1.79622134710368561746e+09,1.79622134712748265268e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/hr/processed.json", "months": 12, "duplicates_dropped": 3}',NULL,1);
INSERT INTO "tasks" VALUES(11,1,'summarize','hr','succeeded',0,0,1,1,0,1.79622134712770819666e+09,1.79622134712770819666e+09,NULL,NULL,0,1.79622134712770819666e+09,1.79622134713954973222e+09,'{"department": "hr", "year": 2024, "figures": {"revenue": 744187369, "cogs": 425254251, "gross_profit": 318933118, "opex": 66229110, "payroll": 146682900, "operating_profit": 106021108, "units_sold": 8140, "inventory_value": 1366993, "deals_won": 36, "deals_lost": 40, "deals_open": 38, "won_value": 74020000, "lost_value": 82650000, "pipeline_value": 79780000}, "kpis": {"gross_margin_pct": "42.9", "operating_margin_pct": "14.2", "payroll_share_pct": "19.7", "win_rate_pct": "47.4", "average_won_deal": "20561.11"}, "processed": "/tmp/tmpyyrcs1_w/year_end_report_out/work/hr/processed.json"}',NULL,2);
INSERT INTO "tasks" VALUES(12,1,'dept_report','hr','succeeded',0,0,1,1,0,1.79622134713979101187e+09,1.79622134713979101187e+09,NULL,NULL,0,1.79622134713979101187e+09,1.79622134715167689322e+09,'{"html": "/tmp/tmpyyrcs1_w/year_end_report_out/departments/hr.html", "csv": "/tmp/tmpyyrcs1_w/year_end_report_out/departments/hr.csv"}',NULL,3);
INSERT INTO "tasks" VALUES(13,1,'extract_crm','branch_a','succeeded',0,0,1,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.79622134706822705269e+09,1.79622134708553123473e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/crm.csv", "rows": 213}',NULL,0);
INSERT INTO "tasks" VALUES(14,1,'extract_erp','branch_a','succeeded',0,0,2,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.7962213470857813358e+09,1.79622134709672760964e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/erp.csv", "rows": 48}',NULL,0);
INSERT INTO "tasks" VALUES(15,1,'extract_finance','branch_a','succeeded',0,0,1,1,0,1.79622134551157641409e+09,1.79622134551157641409e+09,NULL,NULL,0,1.79622134709695291518e+09,1.79622134711054873461e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/finance.csv", "rows": 141}',NULL,0);
INSERT INTO "tasks" VALUES(16,1,'process','branch_a','succeeded',0,0,1,1,0,1.79622134711086201669e+09,1.79622134711086201669e+09,NULL,NULL,0,1.79622134711086201669e+09,1.79622134715160346033e+09,'{"path": "/tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/processed.json", "months": 12, "duplicates_dropped": 4}',NULL,1);
INSERT INTO "tasks" VALUES(17,1,'summarize','branch_a','succeeded',0,0,1,1,0,1.79622134715188860897e+09,1.79622134715188860897e+09,NULL,NULL,0,1.79622134715188860897e+09,1.79622134715512943269e+09,'{"department": "branch_a", "year": 2024, "figures": {"revenue": 1192676049, "cogs": 670095514, "gross_profit": 522580535, "opex": 102904560, "payroll": 235153800, "operating_profit": 184522175, "units_sold": 13147, "inventory_value": 2916049, "deals_won": 86, "deals_lost": 63, "deals_open": 61, "won_value": 168850000, "lost_value": 129460000, "pipeline_value": 127910000}, "kpis": {"gross_margin_pct": "43.8", "operating_margin_pct": "15.5", "payroll_share_pct": "19.7", "win_rate_pct": "57.7", "average_won_deal": "19633.72"}, "processed": "/tmp/tmpyyrcs1_w/year_end_report_out/work/branch_a/processed.json"}',NULL,2);
INSERT INTO "tasks" VALUES(18,1,'dept_report','branch_a','succeeded',0,0,1,1,0,1.79622134715528559683e+09,1.79622134715528559683e+09,NULL,NULL,0,1.79622134715528559683e+09,1.79622134716084933285e+09,'{"html": "/tmp/tmpyyrcs1_w/year_end_report_out/departments/branch_a.html", "csv": "/tmp/tmpyyrcs1_w/year_end_report_out/departments/branch_a.csv"}',NULL,3);
INSERT INTO "tasks" VALUES(19,1,'hq_summary','','succeeded',0,0,3,1,0,1.79622134718603444097e+09,1.79622134718603444097e+09,NULL,NULL,0,1.79622134718603444097e+09,1.79622134719062328343e+09,'{"year": 2024, "departments": ["sales", "hr", "branch_a"], "by_department": {"sales": {"revenue": 2503680879, "cogs": 1317777552, "gross_profit": 1185903327, "opex": 199276000, "payroll": 470974280, "operating_profit": 515653047, "units_sold": 43313, "inventory_value": 28311494, "deals_won": 171, "deals_lost": 128, "deals_open": 91, "won_value": 728240000, "lost_value": 534380000, "pipeline_value": 392070000}, "hr": {"revenue": 744187369, "cogs": 425254251, "gross_profit": 318933118, "opex": 66229110, "payroll": 146682900, "operating_profit": 106021108, "units_sold": 8140, "inventory_value": 1366993, "deals_won": 36, "deals_lost": 40, "deals_open": 38, "won_value": 74020000, "lost_value": 82650000, "pipeline_value": 79780000}, "branch_a": {"revenue": 1192676049, "cogs": 670095514, "gross_profit": 522580535, "opex": 102904560, "payroll": 235153800, "operating_profit": 184522175, "units_sold": 13147, "inventory_value": 2916049, "deals_won": 86, "deals_lost": 63, "deals_open": 61, "won_value": 168850000, "lost_value": 129460000, "pipeline_value": 127910000}}, "totals": {"revenue": 4440544297, "cogs": 2413127317, "gross_profit": 2027416980, "opex": 368409670, "payroll": 852810980, "operating_profit": 806196330, "units_sold": 64600, "inventory_value": 32594536, "deals_won": 293, "deals_lost": 231, "deals_open": 190, "won_value": 971110000, "lost_value": 746490000, "pipeline_value": 599760000}, "kpis": {"gross_margin_pct": "45.7", "operating_margin_pct": "18.2", "payroll_share_pct": "19.2", "win_rate_pct": "55.9", "average_won_deal": "33143.69"}}',NULL,3);
INSERT INTO "tasks" VALUES(20,1,'hq_report','','succeeded',0,0,1,1,0,1.79622134719074177736e+09,1.79622134719074177736e+09,NULL,NULL,0,1.79622134719074177736e+09,1.79622134748835301405e+09,'{
  "csv": "/tmp/tmpyyrcs1_w/year_end_report_out/hq/company.csv",
  "html": "/tmp/tmpyyrcs1_w/year_end_report_out/hq/company.html",
  "totals": {
    "cogs": 2413127317,
    "deals_lost": 231,
    "deals_open": 190,
    "deals_won": 293,
    "gross_profit": 2027416980,
    "inventory_value": 32594536,
    "lost_value": 746490000,
    "operating_profit": 806196330,
    "opex": 368409670,
    "payroll": 852810980,
    "pipeline_value": 599760000,
    "revenue": 4440544297,
    "units_sold": 64600,
    "won_value": 971110000
  },
  "year": 2024
}
',NULL,4);
INSERT INTO "tasks" VALUES(21,2,'extract_crm','sales','ready',0,0,1,0,0,1.79622135166317677492e+09,1.79622135166317677492e+09,NULL,NULL,0,NULL,NULL,NULL,NULL,0);
INSERT INTO "tasks" VALUES(22,2,'extract_erp','sales','ready',0,0,2,0,0,1.79622135166317677492e+09,1.79622135166317677492e+09,NULL,NULL,0,NULL,NULL,NULL,NULL,0);
INSERT INTO "tasks" VALUES(23,2,'extract_finance','sales','ready',0,0,1,0,0,1.79622135166317677492e+09,1.79622135166317677492e+09,NULL,NULL,0,NULL,NULL,NULL,NULL,0);
INSERT INTO "tasks" VALUES(24,2,'process','sales','pending',3,0,1,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,1);
INSERT INTO "tasks" VALUES(25,2,'summarize','sales','pending',1,0,1,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,2);
INSERT INTO "tasks" VALUES(26,2,'dept_report','sales','pending',1,0,1,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,3);
INSERT INTO "tasks" VALUES(27,2,'extract_crm','hr','ready',0,0,1,0,0,1.79622135166317677492e+09,1.79622135166317677492e+09,NULL,NULL,0,NULL,NULL,NULL,NULL,0);
INSERT INTO "tasks" VALUES(28,2,'extract_erp','hr','ready',0,0,2,0,0,1.79622135166317677492e+09,1.79622135166317677492e+09,NULL,NULL,0,NULL,NULL,NULL,NULL,0);
INSERT INTO "tasks" VALUES(29,2,'extract_finance','hr','ready',0,0,1,0,0,1.79622135166317677492e+09,1.79622135166317677492e+09,NULL,NULL,0,NULL,NULL,NULL,NULL,0);
INSERT INTO "tasks" VALUES(30,2,'process','hr','pending',3,0,1,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,1);
INSERT INTO "tasks" VALUES(31,2,'summarize','hr','pending',1,0,1,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,2);
INSERT INTO "tasks" VALUES(32,2,'dept_report','hr','pending',1,0,1,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,3);
INSERT INTO "tasks" VALUES(33,2,'hq_summary','','pending',1,0,3,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,3);
INSERT INTO "tasks" VALUES(34,2,'hq_report','','pending',1,0,1,0,0,1.79622135166317677492e+09,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,4);
CREATE TABLE workers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    capacity   TEXT NOT NULL,
    labels     TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_seen  REAL NOT NULL,
    state      TEXT NOT NULL
);
INSERT INTO "workers" VALUES('local1-7083-68a07c','local1','vm',7083,'{"slots": 4}','["erp"]',1.79622134643038058278e+09,1.79622134751450014114e+09,'stopped');
CREATE INDEX graphs_event_type ON graphs (event_type, id);
CREATE INDEX events_submitted ON events (id) WHERE state = 'submitted';
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX audit_event ON audit (event_id, id);
CREATE INDEX audit_task ON audit (task_id, id) WHERE task_id IS NOT NULL;
CREATE INDEX tasks_ready ON tasks (priority DESC, stage DESC, available_at, id) WHERE state = 'ready';
COMMIT;
