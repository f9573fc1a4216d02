package domain

// The built-in templates (version 0): what every clinic sends until it or the network saves
// its own. The wording is deliberately neutral (42 CFR Part 2): anyone who sees a message, on
// a shared screen or a lock screen, must not learn what kind of care the patient receives. It
// names no service type, program, condition or place, and the sender is a generic care team.
// Texts carry no name and no amount (lock screens), and always the clinic's number. Staff
// alerts carry ids, codes and counts only.

type builtinKey struct{ kind, channel, locale string }

type builtinText struct{ subject, body string }

const (
	helloEN = `{{if .Name}}Hello {{.Name}},{{else}}Hello,{{end}}`
	helloES = `{{if .Name}}Hola, {{.Name}}:{{else}}Hola:{{end}}`
	replyEN = `If you need to make a change or have any questions, reply to this email{{with .ClinicPhone}} or call us at {{.}}{{end}}.`
	replyES = `Si necesita hacer un cambio o tiene alguna pregunta, responda a este correo{{with .ClinicPhone}} o llámenos al {{.}}{{end}}.`
	signEN  = "Warm regards,\nThe Care Team\n"
	signES  = "Saludos cordiales,\nEl Equipo de Atención\n"
	stopEN  = ` Reply STOP to opt out.`
	stopES  = ` Responda STOP para darse de baja.`
	staffEN = "\nThis alert carries ids only; open Trellis for details.\n"
	staffES = "\nEste aviso solo contiene identificadores; abra Trellis para ver los detalles.\n"
)

var builtins = map[builtinKey]builtinText{
	// Welcome: the first visit, and the first week's visits when the trigger lists them.
	{KindWelcome, ChannelEmail, LocaleEnglish}: {
		subject: `Welcome — your first visit`,
		body: helloEN + `

Welcome, and thank you for choosing us. We look forward to seeing you at your first visit{{with index .Payload "first_visit_date"}} on {{.}}{{end}}.
{{with index .Payload "first_week"}}
Your visits in the first week:
{{.}}
{{end}}
Please plan to arrive a few minutes early. ` + replyEN + `

If you were not expecting this message, you can ignore it.

` + signEN},
	{KindWelcome, ChannelEmail, LocaleSpanish}: {
		subject: `Bienvenida: su primera visita`,
		body: helloES + `

Le damos la bienvenida y le agradecemos su confianza. Le esperamos en su primera visita{{with index .Payload "first_visit_date"}} el {{.}}{{end}}.
{{with index .Payload "first_week"}}
Sus visitas de la primera semana:
{{.}}
{{end}}
Le pedimos que llegue unos minutos antes. ` + replyES + `

Si no esperaba este mensaje, puede ignorarlo.

` + signES},
	{KindWelcome, ChannelSMS, LocaleEnglish}: {
		body: `Welcome! We look forward to your first visit{{with index .Payload "first_visit_date"}} on {{.}}{{end}}. Questions? Call {{.ClinicPhone}}.` + stopEN},
	{KindWelcome, ChannelSMS, LocaleSpanish}: {
		body: `¡Bienvenida! Le esperamos en su primera visita{{with index .Payload "first_visit_date"}} el {{.}}{{end}}. ¿Preguntas? Llame al {{.ClinicPhone}}.` + stopES},

	// Reminder: before each appointment.
	{KindReminder, ChannelEmail, LocaleEnglish}: {
		subject: `Reminder: your visit on {{.Payload.date}}`,
		body: helloEN + `

This is a reminder of your visit on {{.Payload.date}} at {{.Payload.time}}.

` + replyEN + `

` + signEN},
	{KindReminder, ChannelEmail, LocaleSpanish}: {
		subject: `Recordatorio: su visita del {{.Payload.date}}`,
		body: helloES + `

Le recordamos su visita del {{.Payload.date}} a las {{.Payload.time}}.

` + replyES + `

` + signES},
	{KindReminder, ChannelSMS, LocaleEnglish}: {
		body: `Reminder: you have a visit on {{.Payload.date}} at {{.Payload.time}}. Questions? Call {{.ClinicPhone}}.` + stopEN},
	{KindReminder, ChannelSMS, LocaleSpanish}: {
		body: `Recordatorio: visita el {{.Payload.date}} a las {{.Payload.time}}. ¿Preguntas? Llame al {{.ClinicPhone}}.` + stopES},

	// Rescheduled: the new date and time.
	{KindAppointmentMoved, ChannelEmail, LocaleEnglish}: {
		subject: `Your visit has a new time`,
		body: helloEN + `

Your visit has been moved. The new time is {{.Payload.date}} at {{.Payload.time}}.

` + replyEN + `

` + signEN},
	{KindAppointmentMoved, ChannelEmail, LocaleSpanish}: {
		subject: `Su visita tiene una nueva hora`,
		body: helloES + `

Su visita ha cambiado. La nueva fecha es el {{.Payload.date}} a las {{.Payload.time}}.

` + replyES + `

` + signES},
	{KindAppointmentMoved, ChannelSMS, LocaleEnglish}: {
		body: `Your visit has moved to {{.Payload.date}} at {{.Payload.time}}. Questions? Call {{.ClinicPhone}}.` + stopEN},
	{KindAppointmentMoved, ChannelSMS, LocaleSpanish}: {
		body: `Su visita cambió al {{.Payload.date}} a las {{.Payload.time}}. ¿Preguntas? Llame al {{.ClinicPhone}}.` + stopES},

	// Cancelled.
	{KindAppointmentCancelled, ChannelEmail, LocaleEnglish}: {
		subject: `Your visit on {{.Payload.date}} is cancelled`,
		body: helloEN + `

Your visit on {{.Payload.date}} at {{.Payload.time}} has been cancelled.

To arrange another time, reply to this email{{with .ClinicPhone}} or call us at {{.}}{{end}}.

` + signEN},
	{KindAppointmentCancelled, ChannelEmail, LocaleSpanish}: {
		subject: `Su visita del {{.Payload.date}} se canceló`,
		body: helloES + `

Su visita del {{.Payload.date}} a las {{.Payload.time}} se ha cancelado.

Para acordar otra fecha, responda a este correo{{with .ClinicPhone}} o llámenos al {{.}}{{end}}.

` + signES},
	{KindAppointmentCancelled, ChannelSMS, LocaleEnglish}: {
		body: `Your visit on {{.Payload.date}} at {{.Payload.time}} is cancelled. To rebook, call {{.ClinicPhone}}.` + stopEN},
	{KindAppointmentCancelled, ChannelSMS, LocaleSpanish}: {
		body: `Su visita del {{.Payload.date}} a las {{.Payload.time}} se canceló. Para otra fecha, llame al {{.ClinicPhone}}.` + stopES},

	// Check-in after a missed visit.
	{KindCheckIn, ChannelEmail, LocaleEnglish}: {
		subject: `Checking in`,
		body: helloEN + `

We missed you at your last visit and wanted to check in. We hope all is well.

If you would like to talk or to arrange your next visit, reply to this email{{with .ClinicPhone}} or call us at {{.}}{{end}}.

` + signEN},
	{KindCheckIn, ChannelEmail, LocaleSpanish}: {
		subject: `¿Cómo está?`,
		body: helloES + `

Le echamos de menos en su última visita y queríamos saber cómo está. Esperamos que todo vaya bien.

Si desea hablar o acordar su próxima visita, responda a este correo{{with .ClinicPhone}} o llámenos al {{.}}{{end}}.

` + signES},
	{KindCheckIn, ChannelSMS, LocaleEnglish}: {
		body: `We missed you at your last visit and hope all is well. To talk or rebook, call {{.ClinicPhone}}.` + stopEN},
	{KindCheckIn, ChannelSMS, LocaleSpanish}: {
		body: `Le echamos de menos en su última visita. Para hablar o acordar otra, llame al {{.ClinicPhone}}.` + stopES},

	// Statement ready (the amount in email only).
	{KindStatement, ChannelEmail, LocaleEnglish}: {
		subject: `Your statement is ready`,
		body: helloEN + `

A new statement is ready. The balance is {{.Payload.balance}}, due by {{.Payload.due_date}}.

For questions about your statement, reply to this email{{with .ClinicPhone}} or call us at {{.}}{{end}}.

` + signEN},
	{KindStatement, ChannelEmail, LocaleSpanish}: {
		subject: `Su estado de cuenta está listo`,
		body: helloES + `

Tiene un nuevo estado de cuenta. El saldo es de {{.Payload.balance}}, con vencimiento el {{.Payload.due_date}}.

Si tiene preguntas sobre su estado de cuenta, responda a este correo{{with .ClinicPhone}} o llámenos al {{.}}{{end}}.

` + signES},
	{KindStatement, ChannelSMS, LocaleEnglish}: {
		body: `A new statement is ready for you. Questions? Call {{.ClinicPhone}}.` + stopEN},
	{KindStatement, ChannelSMS, LocaleSpanish}: {
		body: `Tiene un nuevo estado de cuenta. ¿Preguntas? Llame al {{.ClinicPhone}}.` + stopES},

	// Staff alerts: email to a team address; ids, codes and counts only.
	{KindStaffAtRisk, ChannelEmail, LocaleEnglish}: {
		subject: `Patient at risk ({{.Payload.patient_ref}})`,
		body: `A patient meets an at-risk rule.

Patient: {{.Payload.patient_ref}}
Enrollment: {{.Payload.enrollment_id}}
Reasons: {{.Payload.reasons}}
Since: {{.Payload.since}}
` + staffEN},
	{KindStaffAtRisk, ChannelEmail, LocaleSpanish}: {
		subject: `Paciente en riesgo ({{.Payload.patient_ref}})`,
		body: `Un paciente cumple una regla de riesgo.

Paciente: {{.Payload.patient_ref}}
Inscripción: {{.Payload.enrollment_id}}
Motivos: {{.Payload.reasons}}
Desde: {{.Payload.since}}
` + staffES},
	{KindStaffAuthorization, ChannelEmail, LocaleEnglish}: {
		subject: `Authorization {{.Payload.level}} ({{.Payload.patient_ref}})`,
		body: `An authorization needs attention.

Authorization: {{.Payload.authorization_id}}
Patient: {{.Payload.patient_ref}}
Status: {{.Payload.level}}
Units used: {{.Payload.used_units}} of {{.Payload.authorized_units}}
Ends on: {{.Payload.ends_on}}
` + staffEN},
	{KindStaffAuthorization, ChannelEmail, LocaleSpanish}: {
		subject: `Autorización {{.Payload.level}} ({{.Payload.patient_ref}})`,
		body: `Una autorización requiere atención.

Autorización: {{.Payload.authorization_id}}
Paciente: {{.Payload.patient_ref}}
Estado: {{.Payload.level}}
Unidades usadas: {{.Payload.used_units}} de {{.Payload.authorized_units}}
Vence el: {{.Payload.ends_on}}
` + staffES},
	{KindStaffConsentHold, ChannelEmail, LocaleEnglish}: {
		subject: `Charges held for consent ({{.Payload.patient_ref}})`,
		body: `Charges are held until consent to bill is on file.

Patient: {{.Payload.patient_ref}}
Charge: {{.Payload.charge_id}}
Date: {{.Payload.date}}
` + staffEN},
	{KindStaffConsentHold, ChannelEmail, LocaleSpanish}: {
		subject: `Cargos retenidos por consentimiento ({{.Payload.patient_ref}})`,
		body: `Hay cargos retenidos hasta que conste el consentimiento para facturar.

Paciente: {{.Payload.patient_ref}}
Cargo: {{.Payload.charge_id}}
Fecha: {{.Payload.date}}
` + staffES},
	{KindStaffUndeliverable, ChannelEmail, LocaleEnglish}: {
		subject: `Message not delivered ({{.Payload.patient_ref}})`,
		body: `A message to a patient could not be delivered.

Message: {{.Payload.message_id}} ({{.Payload.kind}}, {{.Payload.channel}})
Patient: {{.Payload.patient_ref}}
Reason: {{.Payload.reason}}

Please check the patient's contact details and preferences.
` + staffEN},
	{KindStaffUndeliverable, ChannelEmail, LocaleSpanish}: {
		subject: `Mensaje no entregado ({{.Payload.patient_ref}})`,
		body: `No se pudo entregar un mensaje a un paciente.

Mensaje: {{.Payload.message_id}} ({{.Payload.kind}}, {{.Payload.channel}})
Paciente: {{.Payload.patient_ref}}
Motivo: {{.Payload.reason}}

Revise los datos de contacto y las preferencias del paciente.
` + staffES},
	{KindStaffDeadLetter, ChannelEmail, LocaleEnglish}: {
		subject: `Dead letter: {{.Payload.consumer}}`,
		body: `An event could not be processed and was set aside.

Consumer: {{.Payload.consumer}}
Subject: {{.Payload.original_subject}}
Stream: {{.Payload.original_stream}} #{{.Payload.original_sequence}}
Deliveries: {{.Payload.deliveries}}
Reason: {{.Payload.reason}}
` + staffEN},
	{KindStaffDeadLetter, ChannelEmail, LocaleSpanish}: {
		subject: `Evento apartado: {{.Payload.consumer}}`,
		body: `Un evento no se pudo procesar y se ha apartado.

Consumidor: {{.Payload.consumer}}
Asunto: {{.Payload.original_subject}}
Flujo: {{.Payload.original_stream}} #{{.Payload.original_sequence}}
Entregas: {{.Payload.deliveries}}
Motivo: {{.Payload.reason}}
` + staffES},
}
