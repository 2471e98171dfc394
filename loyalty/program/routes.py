from flask.views import MethodView

from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.hooks import hooks
from loyalty.program import service
from loyalty.program.schemas import ProgramSchema, ProgramUpdateSchema

blp = Blueprint("program", __name__, url_prefix="/v1/program", description="Program settings")


@blp.route("")
class ProgramView(MethodView):
    @require("admin")
    @blp.response(200, ProgramSchema)
    def get(self):
        return service.get_program(db.session)

    @require("admin")
    @blp.arguments(ProgramUpdateSchema)
    @blp.response(200, ProgramSchema)
    def put(self, changes):
        return service.update_program(
            db.session, changes, lambda: service.money_in_currency(db.session, hooks())
        )
