"""One construct per concern; ``suite.AutoRemediation`` composes them."""
