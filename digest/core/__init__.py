"""The pure core: records, rules and rendering. No network, no database, no clock, no file
writes; modules here import only the standard library, pure third-party libraries
(jinja2, feedparser, nh3, premailer, dkimpy, itsdangerous, email-validator) and each other.
"""
