"""blog-digest: turns a blog's feed into a weekly email newsletter."""
