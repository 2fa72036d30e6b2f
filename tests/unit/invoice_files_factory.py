"""Invoice files made by the tests themselves: 数电票 and legacy XML, XBRL, OFD zips, PDFs with QR codes."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from fapiao.core.choices import Colour, Direction, InvoiceKind
from fapiao.core.identifiers import TaxId, TaxIdKind
from fapiao.core.invoice import Buyer, Line
from fapiao.core.invoice_document import invoice_document
from fapiao.core.money import line_amount
from fapiao.core.tax import line_tax, rate_by_code
from fapiao.formats.einvoice_xml_write import write_einvoice_xml
from fapiao.formats.invoice_pdf import invoice_form, render_invoice_pdf

CHECK_URL = "https://fapiao.example.cn/check/"


def line(no: int, name: str, quantity: str, price: str, rate: str, **extra: Any) -> Line:
    amount = line_amount(Decimal(quantity), Decimal(price))
    parsed = rate_by_code(rate)
    return Line(
        no=no,
        name=name,
        tax_code=extra.get("tax_code", "3040201000000000000"),
        spec=extra.get("spec", ""),
        unit=extra.get("unit", ""),
        quantity=Decimal(quantity),
        unit_price=Decimal(price),
        rate=parsed,
        amount=amount,
        tax=line_tax(amount, parsed),
    )


def document(**overrides: Any) -> dict[str, Any]:
    """A ledger entry's ``invoice`` object, as the project's own writers take it."""
    fields: dict[str, Any] = {
        "number": "26110000000000000007",
        "kind": InvoiceKind.SPECIAL,
        "colour": Colour.BLUE,
        "direction": Direction.OUT,
        "issued_on": date(2026, 11, 28),
        "seller_name": "北京示例科技有限公司",
        "seller_tax_id": "91110108MA01ABCD84",
        "buyer": Buyer(name="北京买方贸易有限公司", tax_id=TaxId("91110000MA01XKQ2TQ", TaxIdKind.USCC)),
        "sealed": None,
        "lines": [
            line(1, "*信息技术服务*软件开发", "1", "1000.00", "0.06", unit="项", spec="V2.0"),
            line(2, "*计算机外部设备*键盘", "2", "150.00", "0.13", unit="个", spec="K-104"),
        ],
        "original_number": None,
        "remark": "合同号 HT-2026-001",
    }
    fields.update(overrides)
    return invoice_document(**fields)


def red_document() -> dict[str, Any]:
    return document(
        colour=Colour.RED,
        kind=InvoiceKind.ORDINARY,
        number="26110000000000000008",
        lines=[line(1, "*信息技术服务*软件开发", "-1", "1000.00", "0.06")],
        original_number="26110000000000000007",
        remark="",
    )


def einvoice_xml(invoice: dict[str, Any] | None = None) -> bytes:
    invoice = invoice or document()
    return write_einvoice_xml(invoice, issue_time=f"{invoice['issued_on']} 10:11:12", drawer="王开票")


def invoice_pdf(invoice: dict[str, Any] | None = None) -> bytes:
    return render_invoice_pdf(invoice_form(invoice or document(), issuer="王开票", check_url=CHECK_URL))


LEGACY_XML = """<?xml version="1.0" encoding="UTF-8"?>
<eInvoice>
  <DocID>a1b2</DocID>
  <InvoiceCode>011001900111</InvoiceCode>
  <InvoiceNo>{number}</InvoiceNo>
  <IssueDate>2020年05月20日</IssueDate>
  <InvoiceCheckCode>85342965681116380258</InvoiceCheckCode>
  <Buyer><BuyerName>北京买方贸易有限公司</BuyerName><BuyerTaxID>91110000MA01XKQ2TQ</BuyerTaxID></Buyer>
  <Seller><SellerName>北京示例科技有限公司</SellerName><SellerTaxID>91110108MA01ABCD84</SellerTaxID></Seller>
  <TaxExclusiveTotalAmount>{amount}</TaxExclusiveTotalAmount>
  <TaxTotalAmount>{tax}</TaxTotalAmount>
  <TaxInclusiveTotalAmount>{total}</TaxInclusiveTotalAmount>
  <Note>{note}</Note>
  <GoodsInfos>
    <GoodsInfo><Item>*餐饮服务*餐费</Item><Quantity>1</Quantity><Price>{amount}</Price><Amount>{amount}</Amount>
      <TaxScheme>6%</TaxScheme><TaxAmount>{tax}</TaxAmount></GoodsInfo>
  </GoodsInfos>
</eInvoice>
"""


def legacy_xml(
    *,
    number: str = "80100798",
    amount: str = "100.00",
    tax: str = "6.00",
    total: str = "106.00",
    note: str = "",
) -> bytes:
    return LEGACY_XML.format(number=number, amount=amount, tax=tax, total=total, note=escape(note)).encode()


def money(element: str, value: object) -> str:
    return f'<einv:{element} contextRef="doc" unitRef="CNY" decimals="2">{value}</einv:{element}>'


def xbrl(
    *, lines: list[tuple[str, str, str, str]] | None = None, unit: str = "iso4217:CNY", red: str = "N"
) -> bytes:
    """A Ministry of Finance accounting-data instance: the face in context ``doc``, each line in its own."""
    lines = lines or [
        ("*信息技术服务*软件开发", "1000.000", "0.06", "60.00"),
        ("*计算机外部设备*键盘", "300", "0.13", "39.0"),
    ]
    contexts = "".join(
        f'<xbrli:context id="line{i}"><xbrli:entity><xbrli:identifier scheme="urn:x">91110108MA01ABCD84'
        f'</xbrli:identifier><xbrli:segment><xbrldi:typedMember dimension="einv:LineAxis"><einv:LineNo>{i}'
        "</einv:LineNo></xbrldi:typedMember></xbrli:segment></xbrli:entity>"
        "<xbrli:period><xbrli:instant>2026-11-28</xbrli:instant></xbrli:period></xbrli:context>"
        for i in range(len(lines))
    )
    facts = "".join(
        f'<einv:ItemName contextRef="line{i}">{name}</einv:ItemName>'
        f'<einv:Amount contextRef="line{i}" unitRef="CNY" decimals="2">{amount}</einv:Amount>'
        f'<einv:TaxRate contextRef="line{i}" unitRef="pure" decimals="INF">{rate}</einv:TaxRate>'
        f'<einv:ComTaxAm contextRef="line{i}" unitRef="CNY" decimals="2">{tax}</einv:ComTaxAm>'
        for i, (name, amount, rate, tax) in enumerate(lines)
    )
    total_amount = sum(Decimal(item[1]) for item in lines)
    total_tax = sum(Decimal(item[3]) for item in lines)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<xbrli:xbrl xmlns:xbrli="http://www.xbrl.org/2003/instance" xmlns:link="http://www.xbrl.org/2003/linkbase"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:iso4217="http://www.xbrl.org/2003/iso4217"'
        ' xmlns:xbrldi="http://xbrl.org/2006/xbrldi" xmlns:einv="http://xbrl.mof.gov.cn/taxonomy/einv">'
        '<link:schemaRef xlink:type="simple" xlink:href="einv.xsd"/>'
        '<xbrli:context id="doc"><xbrli:entity><xbrli:identifier scheme="urn:x">91110108MA01ABCD84'
        "</xbrli:identifier></xbrli:entity><xbrli:period><xbrli:instant>2026-11-28</xbrli:instant>"
        "</xbrli:period></xbrli:context>"
        f"{contexts}"
        f'<xbrli:unit id="CNY"><xbrli:measure>{unit}</xbrli:measure></xbrli:unit>'
        '<xbrli:unit id="pure"><xbrli:measure>xbrli:pure</xbrli:measure></xbrli:unit>'
        '<einv:InvoiceNumber contextRef="doc">26110000000000000007</einv:InvoiceNumber>'
        '<einv:RequestTime contextRef="doc">2026-11-28</einv:RequestTime>'
        '<einv:SellerName contextRef="doc">北京示例科技有限公司</einv:SellerName>'
        '<einv:SellerIdNum contextRef="doc">91110108MA01ABCD84</einv:SellerIdNum>'
        '<einv:BuyerName contextRef="doc">北京买方贸易有限公司</einv:BuyerName>'
        '<einv:BuyerIdNum contextRef="doc">91110000MA01XKQ2TQ</einv:BuyerIdNum>'
        f"{money('TotalAmWithoutTax', total_amount)}{money('TotalTaxAm', total_tax)}"
        f"{money('TotalTax-includedAmount', total_amount + total_tax)}"
        f'<einv:WhetherEinvoiceIsRedEinvoice contextRef="doc">{red}</einv:WhetherEinvoiceIsRedEinvoice>'
        f"{facts}</xbrli:xbrl>"
    ).encode()


OFD_XML = """<?xml version="1.0" encoding="UTF-8"?>
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.1" DocType="OFD">
  <ofd:DocBody><ofd:DocInfo><ofd:DocID>x</ofd:DocID><ofd:CustomDatas>{custom}</ofd:CustomDatas></ofd:DocInfo>
  <ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody>
</ofd:OFD>"""
DOCUMENT_XML = """<?xml version="1.0" encoding="UTF-8"?>
<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"><ofd:CommonData><ofd:MaxUnitID>99</ofd:MaxUnitID>
<ofd:PageArea><ofd:PhysicalBox>0 0 210 140</ofd:PhysicalBox></ofd:PageArea></ofd:CommonData>
<ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages>
<ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments><ofd:CustomTags>Tags/CustomTags.xml</ofd:CustomTags>
</ofd:Document>"""


def text_object(object_id: int, x: float, y: float, text: str) -> str:
    return (
        f'<ofd:TextObject ID="{object_id}" Boundary="{x} {y} 60 5" Font="1" Size="3">'
        f'<ofd:TextCode X="0" Y="3">{escape(text)}</ofd:TextCode></ofd:TextObject>'
    )


def page_xml(rows: list[list[str]], *, first_id: int = 100) -> str:
    """A page whose text objects print ``rows`` top to bottom, the words of a row left to right."""
    objects = []
    object_id = first_id
    for row_index, row in enumerate(rows):
        for column, word in enumerate(row):
            objects.append(text_object(object_id, 5 + 20 * column, 5 + 6 * row_index, word))
            object_id += 1
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="http://www.ofdspec.org/2016">'
        f'<ofd:Content><ofd:Layer ID="2">{"".join(objects)}</ofd:Layer></ofd:Content></ofd:Page>'
    )


FORM_ROWS = [
    ["电子发票（增值税专用发票）", "发票号码：26110000000000000007"],
    ["开票日期：2026年11月28日"],
    ["名称：北京买方贸易有限公司", "名称：北京示例科技有限公司"],
    [
        "统一社会信用代码/纳税人识别号：91110000MA01XKQ2TQ",
        "统一社会信用代码/纳税人识别号：91110108MA01ABCD84",
    ],
    ["项目名称", "规格型号", "单位", "数量", "单价", "金额", "税率/征收率", "税额"],
    ["*信息技术服务*软件开发", "V2.0", "项", "1", "1000.00", "1000.00", "6%", "60.00"],
    ["*计算机外部设备*键盘", "K-104", "个", "2", "150.00", "300.00", "13%", "39.00"],
    ["合计", "¥1300.00", "¥99.00"],
    ["价税合计（大写）", "壹仟叁佰玖拾玖圆整", "（小写）¥1399.00"],
]


def ofd(
    *,
    attachment: bytes | None = None,
    attachment_name: str = "Doc_0/Attachs/original_invoice.xml",
    page_rows: list[list[str]] | None = None,
    tags: str | None = None,
    custom: dict[str, str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """An OFD zip: OFD.xml, the document, one page, and optionally an attachment or custom tags."""
    custom_xml = "".join(
        f'<ofd:CustomData Name="{name}">{value}</ofd:CustomData>' for name, value in (custom or {}).items()
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("OFD.xml", OFD_XML.format(custom=custom_xml))
        archive.writestr("Doc_0/Document.xml", DOCUMENT_XML)
        archive.writestr("Doc_0/Pages/Page_0/Content.xml", page_xml(page_rows or []))
        if attachment is not None:
            archive.writestr(
                "Doc_0/Attachs/Attachments.xml",
                '<ofd:Attachments xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Attachment ID="1" '
                'Name="original_invoice" Format="xml"><ofd:FileLoc>original_invoice.xml</ofd:FileLoc>'
                "</ofd:Attachment></ofd:Attachments>",
            )
            archive.writestr(attachment_name, attachment)
        if tags is not None:
            archive.writestr(
                "Doc_0/Tags/CustomTags.xml",
                '<ofd:CustomTags xmlns:ofd="http://www.ofdspec.org/2016"><ofd:CustomTag NameSpace="">'
                "<ofd:FileLoc>CustomTag.xml</ofd:FileLoc></ofd:CustomTag></ofd:CustomTags>",
            )
            archive.writestr("Doc_0/Tags/CustomTag.xml", tags)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()
