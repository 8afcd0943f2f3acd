"""Student bundles: the public checks and the reference's recorded answers that `autograder build` puts beside
each student notebook (`bundle`), and what runs them on the student's machine (`runtime`, `recording`)."""
