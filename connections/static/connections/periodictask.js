"use strict";
// django-celery-beat's periodic task form shows the chosen crontab in words. Its template does this
// in an inline script, which the Content-Security-Policy forbids; templates/admin/djcelery loads this instead.
{
  const $ = django.jQuery;
  const readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  const help = JSON.parse(document.getElementById("crontab-help").textContent);
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(() => {
    const translation = readable[$("#id_crontab").val()] || "";
    $(".field-crontab .help")
      .empty()
      .append(document.createTextNode(help), $("<br>"), document.createTextNode(`Translation: ${translation}`));
  });
}
