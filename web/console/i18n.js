// The console's texts in English and Spanish. The language is the agent's choice, remembered
// in this browser, or else the browser's; dates and times follow the same locale and the
// browser's time zone.

export const messages = {
  en: {
    "app.name": "Switchboard",
    "login.title": "Sign in to Switchboard",
    "login.email": "Email",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Wrong email or password.",
    "header.inbox": "Inbox",
    "header.search": "Search",
    "header.searchPlaceholder": "Search messages, numbers, emails…",
    "header.presence": "Presence",
    "header.language": "Language",
    "header.logout": "Log out",
    "header.shortcuts": "Keyboard shortcuts",
    "header.offline": "Reconnecting…",
    "presence.online": "Online",
    "presence.away": "Away",
    "presence.offline": "Offline",
    "role.agent": "Agent",
    "role.supervisor": "Supervisor",
    "role.admin": "Admin",
    "inbox.title": "Conversations",
    "inbox.view": "Show",
    "inbox.mine": "Mine",
    "inbox.unassigned": "Unassigned",
    "inbox.all": "All",
    "inbox.status": "Status",
    "inbox.channel": "Channel",
    "inbox.account": "Inbox",
    "inbox.label": "Label",
    "inbox.anyStatus": "Any status",
    "inbox.allChannels": "All channels",
    "inbox.allAccounts": "All inboxes",
    "inbox.allLabels": "All labels",
    "inbox.empty": "No conversations here.",
    "inbox.waiting": "Waiting {time}",
    "inbox.nobody": "Unassigned",
    "inbox.unknown": "Unknown contact",
    "status.open": "Open",
    "status.pending": "Pending",
    "status.snoozed": "Snoozed",
    "status.resolved": "Resolved",
    "channel.email": "Email",
    "channel.chat": "Chat",
    "channel.sms": "SMS",
    "channel.voice": "Call",
    "channel.api": "API",
    "conversation.none": "Select a conversation from the inbox.",
    "conversation.reply": "Reply",
    "conversation.note": "Internal note",
    "conversation.send": "Send",
    "conversation.addNote": "Add note",
    "conversation.replyOn": "Replies go out by {channel} to {handle}.",
    "conversation.noteHint": "Only agents see notes.",
    "conversation.replyPlaceholder": "Write a reply… (type / for canned responses)",
    "conversation.notePlaceholder": "Write a note for your team…",
    "conversation.resolve": "Resolve",
    "conversation.reopen": "Reopen",
    "conversation.status": "Status",
    "conversation.assignee": "Assignee",
    "conversation.labels": "Labels",
    "conversation.addLabel": "Add a label",
    "conversation.removeLabel": "Remove label {label}",
    "conversation.canned": "Canned responses",
    "conversation.insert": "Insert",
    "conversation.replying": "{name} is replying",
    "conversation.viewing": "{name} is viewing this conversation",
    "conversation.typing": "The customer is typing…",
    "conversation.sent": "Sent",
    "conversation.failed": "Not delivered",
    "conversation.pending": "Sending…",
    "conversation.delivered": "Delivered",
    "conversation.read": "Read",
    "conversation.attachments": "Attachments",
    "conversation.you": "You",
    "conversation.customer": "Customer",
    "conversation.agentNote": "Note",
    "conversation.subject": "Subject",
    "conversation.failedToSend": "Could not send: {error}",
    "call.inbound": "Incoming call",
    "call.outbound": "Outgoing call",
    "call.duration": "Duration {time}",
    "call.talk": "talk time {time}",
    "call.answered": "Answered",
    "call.missed": "Missed",
    "call.busy": "Busy",
    "call.failed": "Failed",
    "call.voicemail": "Voicemail",
    "call.recording": "Recording",
    "contact.title": "Contact",
    "contact.none": "No contact selected.",
    "contact.handles": "Addresses",
    "contact.timeline": "Timeline",
    "contact.allChannels": "All channels",
    "contact.more": "Load more",
    "contact.end": "Nothing earlier.",
    "contact.merge": "Merge another contact into this one",
    "contact.mergeId": "Id of the contact to merge in",
    "contact.mergeSubmit": "Merge",
    "contact.unmerge": "Undo merge",
    "contact.create": "Create contact",
    "contact.name": "Name",
    "contact.phone": "Phone",
    "contact.email": "Email",
    "contact.save": "Save contact",
    "contact.unnamed": "Unnamed contact",
    "search.results": "Results for “{q}”",
    "search.count": "{n} results",
    "search.none": "Nothing matches.",
    "search.channel": "Channel",
    "search.from": "From date",
    "search.to": "To date",
    "search.notFound": "No contact has {q}.",
    "pop.incoming": "Incoming call from {number}",
    "pop.unknown": "Unknown caller {number}: create a contact?",
    "pop.dismiss": "Dismiss",
    "pop.open": "Open conversations: {n}",
    "keys.title": "Keyboard shortcuts",
    "keys.next": "Next conversation",
    "keys.previous": "Previous conversation",
    "keys.reply": "Reply",
    "keys.note": "Internal note",
    "keys.resolve": "Resolve",
    "keys.search": "Search",
    "keys.help": "Show this help",
    "keys.close": "Close",
    "time.now": "just now",
  },
  es: {
    "app.name": "Switchboard",
    "login.title": "Entra en Switchboard",
    "login.email": "Correo electrónico",
    "login.password": "Contraseña",
    "login.submit": "Entrar",
    "login.failed": "Correo o contraseña incorrectos.",
    "header.inbox": "Bandeja",
    "header.search": "Buscar",
    "header.searchPlaceholder": "Busca mensajes, números, correos…",
    "header.presence": "Estado",
    "header.language": "Idioma",
    "header.logout": "Salir",
    "header.shortcuts": "Atajos de teclado",
    "header.offline": "Reconectando…",
    "presence.online": "Disponible",
    "presence.away": "Ausente",
    "presence.offline": "Desconectado",
    "role.agent": "Agente",
    "role.supervisor": "Supervisor",
    "role.admin": "Administrador",
    "inbox.title": "Conversaciones",
    "inbox.view": "Mostrar",
    "inbox.mine": "Mías",
    "inbox.unassigned": "Sin asignar",
    "inbox.all": "Todas",
    "inbox.status": "Estado",
    "inbox.channel": "Canal",
    "inbox.account": "Bandeja",
    "inbox.label": "Etiqueta",
    "inbox.anyStatus": "Cualquier estado",
    "inbox.allChannels": "Todos los canales",
    "inbox.allAccounts": "Todas las bandejas",
    "inbox.allLabels": "Todas las etiquetas",
    "inbox.empty": "No hay conversaciones aquí.",
    "inbox.waiting": "Esperando {time}",
    "inbox.nobody": "Sin asignar",
    "inbox.unknown": "Contacto desconocido",
    "status.open": "Abierta",
    "status.pending": "Pendiente",
    "status.snoozed": "Pospuesta",
    "status.resolved": "Resuelta",
    "channel.email": "Correo",
    "channel.chat": "Chat",
    "channel.sms": "SMS",
    "channel.voice": "Llamada",
    "channel.api": "API",
    "conversation.none": "Elige una conversación de la bandeja.",
    "conversation.reply": "Responder",
    "conversation.note": "Nota interna",
    "conversation.send": "Enviar",
    "conversation.addNote": "Añadir nota",
    "conversation.replyOn": "La respuesta sale por {channel} a {handle}.",
    "conversation.noteHint": "Solo los agentes ven las notas.",
    "conversation.replyPlaceholder": "Escribe una respuesta… (/ para respuestas guardadas)",
    "conversation.notePlaceholder": "Escribe una nota para tu equipo…",
    "conversation.resolve": "Resolver",
    "conversation.reopen": "Reabrir",
    "conversation.status": "Estado",
    "conversation.assignee": "Asignada a",
    "conversation.labels": "Etiquetas",
    "conversation.addLabel": "Añade una etiqueta",
    "conversation.removeLabel": "Quitar la etiqueta {label}",
    "conversation.canned": "Respuestas guardadas",
    "conversation.insert": "Insertar",
    "conversation.replying": "{name} está respondiendo",
    "conversation.viewing": "{name} está viendo esta conversación",
    "conversation.typing": "El cliente está escribiendo…",
    "conversation.sent": "Enviado",
    "conversation.failed": "No entregado",
    "conversation.pending": "Enviando…",
    "conversation.delivered": "Entregado",
    "conversation.read": "Leído",
    "conversation.attachments": "Adjuntos",
    "conversation.you": "Tú",
    "conversation.customer": "Cliente",
    "conversation.agentNote": "Nota",
    "conversation.subject": "Asunto",
    "conversation.failedToSend": "No se pudo enviar: {error}",
    "call.inbound": "Llamada entrante",
    "call.outbound": "Llamada saliente",
    "call.duration": "Duración {time}",
    "call.talk": "conversación {time}",
    "call.answered": "Atendida",
    "call.missed": "Perdida",
    "call.busy": "Ocupado",
    "call.failed": "Fallida",
    "call.voicemail": "Buzón de voz",
    "call.recording": "Grabación",
    "contact.title": "Contacto",
    "contact.none": "Ningún contacto seleccionado.",
    "contact.handles": "Direcciones",
    "contact.timeline": "Historial",
    "contact.allChannels": "Todos los canales",
    "contact.more": "Cargar más",
    "contact.end": "No hay nada anterior.",
    "contact.merge": "Fusionar otro contacto con este",
    "contact.mergeId": "Id del contacto a fusionar",
    "contact.mergeSubmit": "Fusionar",
    "contact.unmerge": "Deshacer fusión",
    "contact.create": "Crear contacto",
    "contact.name": "Nombre",
    "contact.phone": "Teléfono",
    "contact.email": "Correo electrónico",
    "contact.save": "Guardar contacto",
    "contact.unnamed": "Contacto sin nombre",
    "search.results": "Resultados de «{q}»",
    "search.count": "{n} resultados",
    "search.none": "No hay coincidencias.",
    "search.channel": "Canal",
    "search.from": "Desde",
    "search.to": "Hasta",
    "search.notFound": "Ningún contacto tiene {q}.",
    "pop.incoming": "Llamada entrante de {number}",
    "pop.unknown": "Llamante desconocido {number}: ¿crear un contacto?",
    "pop.dismiss": "Cerrar aviso",
    "pop.open": "Conversaciones abiertas: {n}",
    "keys.title": "Atajos de teclado",
    "keys.next": "Conversación siguiente",
    "keys.previous": "Conversación anterior",
    "keys.reply": "Responder",
    "keys.note": "Nota interna",
    "keys.resolve": "Resolver",
    "keys.search": "Buscar",
    "keys.help": "Mostrar esta ayuda",
    "keys.close": "Cerrar",
    "time.now": "ahora",
  },
};

export const languages = { en: "English", es: "Español" };

let current = pick();

function pick() {
  const saved = localStorage.getItem("switchboard.lang");
  if (saved && messages[saved]) return saved;
  const browser = (navigator.language || "en").slice(0, 2);
  return messages[browser] ? browser : "en";
}

export function lang() {
  return current;
}

export function setLang(next) {
  if (!messages[next]) return;
  current = next;
  localStorage.setItem("switchboard.lang", next);
  document.documentElement.lang = next;
}

/** The text for `key` in the current language, with `{name}` placeholders filled. */
export function t(key, vars = {}) {
  const text = messages[current][key] ?? messages.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A date and time in the agent's locale and time zone. */
export function formatTime(iso) {
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return new Intl.DateTimeFormat(current, sameDay ? { timeStyle: "short" } : { dateStyle: "medium", timeStyle: "short" }).format(date);
}

/** How long ago, compactly: "4 min", "2 h", "3 d". */
export function formatAgo(iso, now = Date.now()) {
  const seconds = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return t("time.now");
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (seconds >= size) {
      return new Intl.NumberFormat(current, { style: "unit", unit, unitDisplay: "short", maximumFractionDigits: 0 }).format(Math.floor(seconds / size));
    }
  }
  return t("time.now");
}

/** A call length in seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}
