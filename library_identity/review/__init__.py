"""What needs a person: the worklist (rpt_worklist) as CSV, and the review loop that
lands a person's decisions for the merge to write as a librarian's rows."""

# The worklist's kinds (here, where the command line's options read them without loading
# the report).
KINDS = ("unresolved", "refused", "low-confidence")
