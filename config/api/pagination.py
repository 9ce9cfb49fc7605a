"""Page-number pagination that refuses a page it cannot read instead of guessing."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class StrictPageNumberPagination(PageNumberPagination):
    """DRF's pagination, but `?page=` with no number is a 400 naming the parameter.

    DRF reads an empty `page` as page 1, so a client that builds `?page=` from an unset
    variable silently gets the first page forever; a number it cannot parse is already a 404
    ("Invalid page.").
    """

    def get_page_number(self, request, paginator):
        value = request.query_params.get(self.page_query_param)
        if value is not None and not value.strip():
            raise ValidationError({self.page_query_param: ["Give a page number (1 or more), or leave `page` out."]})
        return super().get_page_number(request, paginator)
