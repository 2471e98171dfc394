from flask.views import MethodView

from loyalty.auth import require
from loyalty.earning import rules
from loyalty.earning.schemas import (
    EarningRulePageSchema,
    EarningRuleSchema,
    EarningRuleUpdateSchema,
)
from loyalty.extensions import Blueprint, db
from loyalty.schemas import Int32PaginationQuery

blp = Blueprint(
    "earning_rules", __name__, url_prefix="/v1/earning-rules", description="Earning rules"
)


@blp.route("")
class EarningRules(MethodView):
    @require("admin")
    @blp.arguments(Int32PaginationQuery, location="query")
    @blp.response(200, EarningRulePageSchema)
    def get(self, query):
        return rules.list_rules(db.session, query["limit"], query["cursor"])

    @require("admin")
    @blp.arguments(EarningRuleSchema)
    @blp.response(201, EarningRuleSchema)
    def post(self, data):
        return rules.create_rule(db.session, data)


@blp.route("/<int32:rule_id>")
class EarningRuleView(MethodView):
    @require("admin")
    @blp.response(200, EarningRuleSchema)
    def get(self, rule_id):
        return rules.get_rule(db.session, rule_id)

    @require("admin")
    @blp.arguments(EarningRuleUpdateSchema)
    @blp.response(200, EarningRuleSchema)
    def patch(self, changes, rule_id):
        return rules.update_rule(db.session, rule_id, changes)

    @require("admin")
    @blp.response(204)
    def delete(self, rule_id):
        rules.delete_rule(db.session, rule_id)
