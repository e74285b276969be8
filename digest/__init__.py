"""blog-digest: turns a blog's feed into a weekly email newsletter.

The folders are the layers; each may import only the ones named on its right
(tests/test_architecture.py checks direct, transitive and TYPE_CHECKING imports)::

    core/      pure functions and records: config and sections, checks, parse, sanitize, select, group,
               render, note, inline, compose, archive, message, address, classify,
               retry, calendar, tokens, sign, subscriptions, mailview, starter,
               returns and reports (sorting the mail that comes back), verp, questions,
               answers, contact_form, question_mail, models, errors.  No network, no
               database, no clock, no file writes: time and input come in as arguments.
                                                                     imports: core
    adapters/  the only code that touches the world: fetch (HTTP), store, schema,
               migrate, ledger and deliveries, inbox_ledger, questions and notices (SQL),
               secret (the link secret, the DKIM key), smtp (the wire), imap (the
               inbox), mailbox (a local SMTP server), scheduler (APScheduler), listen.
                                                                    imports: core, adapters
    jobs/      one module per thing the program does, seeing the world only through the
               Protocols of ports.py (books.py: the store's) it is handed, never an adapter,
               and reading the config sections it is handed (sections.py's Publication, a
               table), never the whole Config: outbox (the one
               engine every mail goes through, with drain and commit), deliver (an issue
               as a kind of mail), notices (the askers' notices, another), mail (single
               mails), build, preview, send_issue, retry, inbox and intake, questions,
               answers, subscribers, report, init.
                                                                     imports: core, jobs
    web/       the Starlette app of `digest serve`; mails only through hooks it is handed.
                                                                     imports: core, adapters, web
    cli/       the `digest` command: parses, calls one job, prints, exits. The only
               place that prints; wiring.py, the composition root, builds the adapters
               (lazily, once per process) and hands them to the jobs.
                                                                     imports: anything

Where a change goes: a new rule about content is core; a new outside system is an
adapter, with a Protocol in jobs/ports.py and a part in cli/wiring.py; a new kind of mail
is a template and a few lines through jobs/outbox.py, never a new send loop; a new command
is a job plus a few lines of CLI.
"""
