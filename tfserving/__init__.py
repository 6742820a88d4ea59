"""kva's model server (``kva serve``) and model builder (``kva models``)."""
