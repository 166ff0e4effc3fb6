//! The sandbox's testing-only admin endpoints (not in real MESH): reset,
//! injected reports and events, message details.

use super::*;

impl MeshSandbox {
    // --- testing-only admin endpoints (not in real MESH) ---

    /// Empties every mailbox (`DELETE /messageexchange/admin/reset`).
    pub async fn reset(&self) {
        let r = self
            .raw(Method::DELETE, "/messageexchange/admin/reset", &[], None)
            .await;
        assert_eq!(r.status, 200, "reset: {}", r.text());
    }

    /// Empties one mailbox's inbox, outbox and local ids.
    pub async fn reset_mailbox(&self, mb: Mailbox) {
        let r = self
            .raw(
                Method::DELETE,
                &format!("/messageexchange/admin/reset/{}", mb.id),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "reset {}: {}", mb.id, r.text());
    }

    /// `POST /messageexchange/admin/report` with `body` as is (fields `mailbox_id`,
    /// `code`, `description`, `workflow_id` required; `status` `undeliverable`
    /// (default) or `error`; `subject`, `local_id`, `file_name`, `linked_message_id`).
    /// Puts a REPORT message in `mailbox_id`'s inbox; returns its message id. The
    /// linked message's own tracking does not change (see [`MeshSandbox::add_event`]).
    pub async fn inject_report(&self, body: &Value) -> String {
        let r = self
            .raw(
                Method::POST,
                "/messageexchange/admin/report",
                &[("content-type", "application/json")],
                Some(serde_json::to_vec(body).unwrap()),
            )
            .await;
        assert_eq!(r.status, 200, "report injection: {}", r.text());
        r.json()["message_id"].as_str().unwrap().to_owned()
    }

    /// A non-delivery report to `to` about `linked_message_id`, as MESH sends a sender
    /// when the recipient never collected: in the inbox with `mex-messagetype: REPORT`,
    /// `mex-linkedmsgid`, `mex-statuscode: 14`, `mex-statusevent: SEND`,
    /// `mex-statussuccess: ERROR`, `mex-statusdescription: Message not collected by
    /// recipient after 5 days`, `mex-subject: NDR`, no `mex-from`, empty body.
    pub async fn inject_undeliverable(
        &self,
        to: Mailbox,
        linked_message_id: &str,
        workflow_id: &str,
    ) -> String {
        self.inject_report(&json!({
            "mailbox_id": to.id,
            "code": "14",
            "description": "Message not collected by recipient after 5 days",
            "workflow_id": workflow_id,
            "linked_message_id": linked_message_id,
        }))
        .await
    }

    /// An error report (`status: error`): `mex-statusevent: TRANSFER` with the given
    /// `mex-statuscode` and `mex-statusdescription`.
    pub async fn inject_error_report(
        &self,
        to: Mailbox,
        linked_message_id: &str,
        workflow_id: &str,
        code: &str,
        description: &str,
    ) -> String {
        self.inject_report(&json!({
            "mailbox_id": to.id,
            "status": "error",
            "code": code,
            "description": description,
            "workflow_id": workflow_id,
            "linked_message_id": linked_message_id,
        }))
        .await
    }

    /// Appends a status event to a message (`POST /messageexchange/admin/message/{id}/event`),
    /// e.g. `("error", "14", "SEND", "not collected")`: its tracking then says
    /// `status: Error`, `statusSuccess: ERROR`, `failureDiagnostic`, and the recipient
    /// can no longer download it (410).
    pub async fn add_event(
        &self,
        message_id: &str,
        status: &str,
        code: &str,
        event: &str,
        description: &str,
    ) {
        let r = self
            .raw(
                Method::POST,
                &format!("/messageexchange/admin/message/{message_id}/event"),
                &[("content-type", "application/json")],
                Some(
                    serde_json::to_vec(&json!({
                        "status": status, "code": code, "event": event,
                        "description": description, "linked_message_id": message_id,
                    }))
                    .unwrap(),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "add event to {message_id}: {}", r.text());
    }

    /// Everything the sandbox holds about a message, whoever sent it
    /// (`GET /messageexchange/admin/message/{id}`); `None` if unknown.
    pub async fn message_details(&self, message_id: &str) -> Option<Value> {
        let r = self
            .raw(
                Method::GET,
                &format!("/messageexchange/admin/message/{message_id}"),
                &[],
                None,
            )
            .await;
        (r.status == 200).then(|| r.json())
    }
}
