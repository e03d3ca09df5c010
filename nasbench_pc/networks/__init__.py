"""Stand-alone networks derived from a genotype: what they cost (``cost``), training them (``train``) and shipping
them as timm model folders (``export``)."""
