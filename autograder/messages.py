"""Message templates shown to instructors and students; tests import and match these constants."""

# Specs (instructor-facing)
SPEC_NOT_FOUND = "assignment {name!r}: no assignment.toml at {path}"
SPEC_UNREADABLE = "{file}: cannot read the spec: {problem}"
SPEC_FIELD = "{file}: field '{field}' {problem}"
