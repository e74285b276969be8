"""blog-digest: turns a blog's feed into a weekly email newsletter.

The folders are the layers; each may import only the ones below it
(tests/test_architecture.py checks direct and transitive imports)::

    core/      pure functions and records: config, checks, parse, sanitize, select, group,
               render, note, inline, compose, archive, message, address, classify,
               retry, calendar, tokens, sign, subscriptions, mailview, starter,
               returns and reports (sorting the mail that comes back), verp, questions,
               answers, contact_form, question_mail, models, errors.  No network, no
               database, no clock, no file writes: time and input come in as arguments.
                                                                     imports: core
    adapters/  the only code that touches the world: fetch (HTTP), store, schema,
               ledger, inbox_ledger, questions and notices (SQL), smtp (the wire), imap
               (the inbox), mailbox (a local SMTP server), scheduler (APScheduler).
                                                                    imports: core, adapters
    jobs/      one module per thing the program does, wiring core and adapters: build
               (the next issue), preview, send_issue (send the next issue), deliver
               (one issue to its audience), retry (a run's sending, deferred messages),
               mail (single mails), inbox (read the mail that comes back), questions
               (intake, acknowledgement, moderation), answers (linking answers), notices
               (the askers' notices), report (status, history); ports.py declares what
               they need (Mailer, DeliveryLedger, Progress, Mailbox, InboxBook).
                                                                     imports: core, adapters, jobs
    web/       the Starlette app of `digest serve`; mails only through hooks it is handed.
                                                                     imports: core, adapters, web
    cli/       the `digest` command: parses, calls one job, prints, exits. The only
               place that prints.                                  imports: anything

Where a change goes: a new rule about content is core; a new outside system is an
adapter (with a Protocol in jobs/ports.py if a job drives it); a new command is a job
plus a few lines of CLI.
"""
