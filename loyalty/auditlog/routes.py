from flask.views import MethodView

from loyalty.auditlog import service
from loyalty.auditlog.schemas import AuditLogQuery, AuditPageSchema, audit_filter
from loyalty.auth import require
from loyalty.extensions import Blueprint, db

blp = Blueprint("audit_log", __name__, url_prefix="/v1", description="Audit log (admin)")


@blp.route("/audit-log")
class AuditLogList(MethodView):
    @require("admin")
    @blp.arguments(AuditLogQuery, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, query):
        """Admin changes, newest first: who (`actor`), what (`action`, `target`), when (`at`),
        and the object `before` and `after`. Filters combine (all must hold)."""
        return service.list_entries(
            db.session, audit_filter(query), query["limit"], query["cursor"]
        )
